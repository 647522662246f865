-- Activity-based cost to serve per customer: Σ rate(activity) × count(activity). Activities are
-- the customer's contact episodes plus one delivery per won order.
with interactions as (select * from {{ ref('int_customer_interactions_resolved') }}),
orders as (select * from {{ ref('int_orders_costed') }}),
rates as (select * from {{ ref('activity_rates') }}),

activities as (
    select customer_id, activity from interactions
    union all
    select customer_id, 'delivery' as activity from orders
),

counted as (
    select customer_id, activity, count(*) as activity_count
    from activities
    group by customer_id, activity
),

final as (
    select
        counted.customer_id,
        sum(counted.activity_count * coalesce(rates.rate_rub, other_rate.rate_rub, 0)) as cost_to_serve,
        sum(counted.activity_count) filter (where counted.activity <> 'delivery') as contacts,
        sum(counted.activity_count) filter (where counted.activity = 'complaint') as complaints
    from counted
    left join rates on rates.activity = counted.activity
    left join rates as other_rate on other_rate.activity = 'other'
    group by counted.customer_id
)

select * from final
