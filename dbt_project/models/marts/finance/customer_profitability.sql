-- One row per customer: revenue − cost of goods − cost to serve − acquisition cost = profit,
-- ranked by profit with the whale-curve cumulative share and the ABC class.
with customers as (select * from {{ ref('int_customers_unified') }}),
orders as (select * from {{ ref('int_orders_costed') }}),
service_costs as (select * from {{ ref('int_cost_to_serve_aggregated') }}),
acquisition as (select * from {{ ref('int_customer_acquisition_attributed') }}),
abc_thresholds as (select * from {{ ref('abc_thresholds') }}),

revenue as (
    select
        customer_id,
        sum(revenue) as revenue,
        sum(cost_of_goods) as cost_of_goods,
        count(*) as won_orders
    from orders
    group by customer_id
),

profit as (
    select
        customers.customer_id,
        coalesce(revenue.revenue, 0) as revenue,
        coalesce(revenue.won_orders, 0) as won_orders,
        coalesce(revenue.cost_of_goods, 0) as cost_of_goods,
        coalesce(service_costs.cost_to_serve, 0) as cost_to_serve,
        acquisition.acquisition_campaign,
        coalesce(acquisition.acquisition_cost, 0) as acquisition_cost
    from customers
    left join revenue on revenue.customer_id = customers.customer_id
    left join service_costs on service_costs.customer_id = customers.customer_id
    left join acquisition on acquisition.customer_id = customers.customer_id
),

computed as (
    select
        profit.*,
        revenue - cost_of_goods as gross_profit,
        revenue - cost_of_goods - cost_to_serve - acquisition_cost as profit
    from profit
),

ranked as (
    select
        computed.*,
        row_number() over (order by profit desc, customer_id) as profit_rank,
        count(*) over () as customer_count,
        sum(profit) over () as total_profit,
        sum(greatest(profit, 0)) over () as total_positive_profit,
        sum(profit) over (order by profit desc, customer_id rows between unbounded preceding and current row)
            as cumulative_profit
    from computed
),

final as (
    select
        customer_id,
        revenue,
        won_orders,
        cost_of_goods,
        gross_profit,
        cost_to_serve,
        acquisition_campaign,
        acquisition_cost,
        profit,
        case when revenue <> 0 then round(profit / revenue, 4) end as margin,
        profit_rank,
        cumulative_profit,
        case when total_profit <> 0 then round(cumulative_profit / total_profit, 6) end as cumulative_profit_share,
        round(cast(profit_rank as numeric) / customer_count, 6) as customer_share,
        case
            when profit <= 0 then 'D'
            else (
                select abc_thresholds.abc_class
                from abc_thresholds
                -- the share reached before this customer: the one who crosses 80% is still an A
                where (ranked.cumulative_profit - ranked.profit) / ranked.total_positive_profit
                    < abc_thresholds.max_cumulative_share
                order by abc_thresholds.max_cumulative_share
                limit 1
            )
        end as abc_class
    from ranked
)

select * from final
