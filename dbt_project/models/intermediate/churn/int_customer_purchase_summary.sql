-- The BG/NBD summary per customer who bought: x = repeat purchases, t_x = time of the last
-- purchase since the first, T = age at run_date, in the model's time unit (var churn_time_unit).
-- Several purchases on one day count as one purchase, as in the model's convention.
with orders as (select * from {{ ref('int_orders_costed') }}),

purchase_days as (
    select customer_id, order_date, sum(revenue) as revenue, sum(revenue - cost_of_goods) as gross_profit
    from orders
    group by customer_id, order_date
),

summarised as (
    select
        customer_id,
        min(order_date) as first_purchase_date,
        max(order_date) as last_purchase_date,
        count(*) as purchase_days,
        sum(revenue) as revenue,
        sum(gross_profit) as gross_profit
    from purchase_days
    group by customer_id
),

final as (
    select
        customer_id,
        first_purchase_date,
        last_purchase_date,
        purchase_days,
        purchase_days - 1 as x,
        round(cast((last_purchase_date - first_purchase_date) as numeric) / {{ churn_unit_days() }}, 6) as t_x,
        round(cast(({{ run_date() }} - first_purchase_date) as numeric) / {{ churn_unit_days() }}, 6) as t_cal,
        {{ run_date() }} - last_purchase_date as days_since_last_purchase,
        case
            when purchase_days > 1
                then round(cast(last_purchase_date - first_purchase_date as numeric) / (purchase_days - 1), 2)
        end as mean_interpurchase_days,
        revenue,
        gross_profit,
        round(gross_profit / purchase_days, 2) as gross_profit_per_purchase
    from summarised
)

select * from final
