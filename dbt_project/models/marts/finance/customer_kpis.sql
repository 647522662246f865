-- Customer-base KPIs by calendar month up to run_date: revenue and transactions per buying
-- customer, new versus returning customers, and frequent customers. A transaction is a purchase
-- day (same-day orders count once).
-- The customer-months come from int_customer_months (incremental by customer); this model only
-- sums them per month, in the range up to run_date.
with buyers as (
    select
        month_start,
        customer_id,
        revenue,
        purchase_days as transactions,
        is_first_month as is_new,
        purchase_days_12m as purchases_12m
    from {{ ref('int_customer_months') }}
),

settings as (
    select value as frequent_min from {{ ref('model_parameters') }} where parameter = 'frequent_min_purchases_12m'
),

months as (
    select cast(generate_series(
        min(month_start),
        {{ dbt.date_trunc('month', run_date()) }},
        interval '1 month'
    ) as date) as month_start
    from buyers
),

monthly as (
    select
        months.month_start,
        count(buyers.customer_id) as active_customers,
        coalesce(sum(buyers.revenue), 0) as revenue,
        coalesce(sum(buyers.transactions), 0) as transactions,
        count(*) filter (where buyers.is_new) as new_customers,
        count(*) filter (where not buyers.is_new) as returning_customers,
        count(*) filter (where buyers.purchases_12m >= (select frequent_min from settings)) as frequent_customers
    from months
    left join buyers on buyers.month_start = months.month_start
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
