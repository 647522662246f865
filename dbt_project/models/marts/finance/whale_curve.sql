-- The whale curve as 101 chart points: for each percentile of customers ranked by profit
-- (best first), the cumulative profit as a share of total profit. It rises above 1 and comes
-- back to 1 at 100%.
with profitability as (select * from {{ ref('customer_profitability') }}),

percentiles as (
    select generate_series(0, 100) as percentile
),

totals as (
    select count(*) as customer_count, sum(profit) as total_profit from profitability
),

points as (
    select
        percentiles.percentile,
        cast(ceil(percentiles.percentile / 100.0 * totals.customer_count) as integer) as customers_included,
        totals.total_profit
    from percentiles
    cross join totals
),

final as (
    select
        points.percentile,
        round(points.percentile / 100.0, 2) as customer_share,
        points.customers_included,
        coalesce(profitability.cumulative_profit, 0) as cumulative_profit,
        case
            when points.total_profit <> 0 then round(coalesce(profitability.cumulative_profit, 0) / points.total_profit, 6)
        end as cumulative_profit_share
    from points
    left join profitability on profitability.profit_rank = points.customers_included
)

select * from final
