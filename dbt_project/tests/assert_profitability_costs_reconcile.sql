-- Cost of goods and cost to serve in the mart add up to the order- and activity-level totals
-- (no customer lost or double-counted by the joins).
with mart as (
    select sum(cost_of_goods) as cost_of_goods, sum(cost_to_serve) as cost_to_serve
    from {{ ref('customer_profitability') }}
),

orders as (select sum(cost_of_goods) as cost_of_goods from {{ ref('int_orders_costed') }}),
service as (select sum(cost_to_serve) as cost_to_serve from {{ ref('int_cost_to_serve_aggregated') }})

select
    mart.cost_of_goods as mart_cost_of_goods,
    orders.cost_of_goods as order_cost_of_goods,
    mart.cost_to_serve as mart_cost_to_serve,
    service.cost_to_serve as activity_cost_to_serve
from mart
cross join orders
cross join service
where round(mart.cost_of_goods, 2) <> round(coalesce(orders.cost_of_goods, 0), 2)
    or round(mart.cost_to_serve, 2) <> round(coalesce(service.cost_to_serve, 0), 2)
