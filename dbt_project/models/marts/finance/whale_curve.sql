-- The whale curve as chart points: at each share of customers ranked by profit (best first;
-- var whale_curve_points + 1 points, 0%..100%), the cumulative profit as a share of total
-- profit. It rises above 1 where the best customers earn more than the total, and comes back to
-- 1 at 100% once the loss-makers have taken their part.
with profitability as (select * from {{ ref('customer_profitability') }}),

{%- set points = var('whale_curve_points', 100) | int %}
steps as (
    select generate_series(0, {{ points }}) as point
),

totals as (
    select count(*) as customer_count, sum(profit) as total_profit from profitability
),

points as (
    select
        steps.point,
        cast(ceil(steps.point * totals.customer_count / {{ points }}.0) as integer) as customers_included,
        totals.total_profit
    from steps
    cross join totals
),

final as (
    select
        points.point,
        round(points.point / {{ points }}.0, 6) as customer_share,
        points.customers_included,
        coalesce(profitability.cumulative_profit, 0) as cumulative_profit,
        case
            when points.total_profit <> 0 then round(coalesce(profitability.cumulative_profit, 0) / points.total_profit, 6)
        end as cumulative_profit_share
    from points
    left join profitability on profitability.profit_rank = points.customers_included
)

select * from final
