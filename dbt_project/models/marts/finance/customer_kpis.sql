-- Customer-base KPIs by calendar month up to run_date: revenue and transactions per buying
-- customer, new versus returning customers, and frequent customers. A transaction is a purchase
-- day (same-day orders count once).
with orders as (select * from {{ ref('int_orders_costed') }}),
settings as (
    select value as frequent_min from {{ ref('model_parameters') }} where parameter = 'frequent_min_purchases_12m'
),

purchase_days as (
    select customer_id, order_date, sum(revenue) as revenue
    from orders
    group by customer_id, order_date
),

firsts as (
    select customer_id, min(order_date) as first_purchase_date from purchase_days group by customer_id
),

months as (
    select cast(generate_series(
        {{ dbt.date_trunc('month', 'min(order_date)') }},
        {{ dbt.date_trunc('month', run_date()) }},
        interval '1 month'
    ) as date) as month_start
    from purchase_days
),

buyers as (
    select
        cast({{ dbt.date_trunc('month', 'purchase_days.order_date') }} as date) as month_start,
        purchase_days.customer_id,
        sum(purchase_days.revenue) as revenue,
        count(*) as transactions,
        bool_or({{ dbt.date_trunc('month', 'firsts.first_purchase_date') }}
            = {{ dbt.date_trunc('month', 'purchase_days.order_date') }}) as is_new
    from purchase_days
    inner join firsts on firsts.customer_id = purchase_days.customer_id
    group by {{ dbt.date_trunc('month', 'purchase_days.order_date') }}, purchase_days.customer_id
),

customer_months as (
    select
        customer_id,
        cast({{ dbt.date_trunc('month', 'order_date') }} as date) as month_start,
        count(*) as purchase_days
    from purchase_days
    group by customer_id, {{ dbt.date_trunc('month', 'order_date') }}
),

-- purchase days in the 12 months ending with each month a customer bought in (a window over
-- the customer's months, so the cost stays linear in customer-months)
trailing_year as (
    select
        month_start,
        customer_id,
        sum(purchase_days) over (
            partition by customer_id order by month_start
            range between interval '11 months' preceding and current row
        ) as purchases_12m
    from customer_months
),

monthly as (
    select
        months.month_start,
        count(buyers.customer_id) as active_customers,
        coalesce(sum(buyers.revenue), 0) as revenue,
        coalesce(sum(buyers.transactions), 0) as transactions,
        count(*) filter (where buyers.is_new) as new_customers,
        count(*) filter (where not buyers.is_new) as returning_customers,
        count(*) filter (where trailing_year.purchases_12m >= (select frequent_min from settings)) as frequent_customers
    from months
    left join buyers on buyers.month_start = months.month_start
    left join trailing_year on trailing_year.month_start = buyers.month_start and trailing_year.customer_id = buyers.customer_id
    group by months.month_start
),

final as (
    select
        month_start,
        active_customers,
        revenue,
        transactions,
        round(revenue / nullif(active_customers, 0), 2) as revenue_per_user,
        round(cast(transactions as numeric) / nullif(active_customers, 0), 4) as transactions_per_user,
        new_customers,
        returning_customers,
        round(cast(new_customers as numeric) / nullif(active_customers, 0), 4) as share_new,
        round(cast(returning_customers as numeric) / nullif(active_customers, 0), 4) as share_returning,
        frequent_customers
    from monthly
)

select * from final
