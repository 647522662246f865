-- One row per customer and calendar month with a purchase: revenue, purchase days (same-day
-- orders count once), whether it is the customer's first month, and the purchase days of the 12
-- months ending with it. customer_kpis sums these per month.
--
-- Incremental by customer (macros/customer_scope.sql): every column is a function of the
-- customer's won orders alone, which int_customers_changed logs when derived again or left.
-- customer_kpis aggregated all 1.2 M costed orders each night for its 25 rows (9–14 s of a
-- medium new day, session 12).
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        indexes=[{'columns': ['customer_id', 'month_start'], 'unique': True}],
        pre_hook=["{{ customer_scope() }}"],
        post_hook=["{{ customer_scope_read() }}"],
    )
}}
-- depends_on: {{ ref('int_customers_changed') }}, {{ ref('int_customer_nodes_resolved') }}
with orders as (
    select customer_id, order_date, revenue
    from {{ ref('int_orders_costed') }}
    where {{ in_customer_scope('customer_id') }}
),

purchase_days as (
    select customer_id, order_date, sum(revenue) as revenue
    from orders
    group by customer_id, order_date
),

customer_months as (
    select
        customer_id,
        cast({{ dbt.date_trunc('month', 'order_date') }} as date) as month_start,
        sum(revenue) as revenue,
        count(*) as purchase_days
    from purchase_days
    group by customer_id, {{ dbt.date_trunc('month', 'order_date') }}
),

final as (
    select
        customer_id,
        month_start,
        revenue,
        purchase_days,
        month_start = min(month_start) over (partition by customer_id) as is_first_month,
        sum(purchase_days) over (
            partition by customer_id order by month_start
            range between interval '11 months' preceding and current row
        ) as purchase_days_12m
    from customer_months
)

select * from final
