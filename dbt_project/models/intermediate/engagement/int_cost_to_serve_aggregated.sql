-- Activity-based cost to serve per customer: Σ rate(activity) × count(activity). Activities are
-- the customer's contact episodes plus one delivery per won order.
--
-- Incremental by customer (macros/customer_scope.sql): its inputs are the customer's episodes
-- and won orders, which int_customers_changed logs when derived again or left; a change of the
-- activity rates prices every customer again. All customers again took 7–8 s of a medium new
-- day (session 12).
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        indexes=[{'columns': ['customer_id'], 'unique': True}],
        pre_hook=["{{ customer_scope(lookups=[ref('activity_rates')]) }}"],
        post_hook=["{{ customer_scope_read(lookups=[ref('activity_rates')]) }}"],
    )
}}
-- depends_on: {{ ref('int_customers_changed') }}, {{ ref('int_customer_nodes_resolved') }}
with interactions as (
    select * from {{ ref('int_customer_interactions_resolved') }} where {{ in_customer_scope('customer_id') }}
),
orders as (select * from {{ ref('int_orders_costed') }} where {{ in_customer_scope('customer_id') }}),
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
