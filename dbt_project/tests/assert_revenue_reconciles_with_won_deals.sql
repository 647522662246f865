-- Σ customer revenue must equal Σ won-deal revenue to the cent. The won deals are recomputed
-- here straight from staging, independently of the intermediate joins, so a deal lost or
-- duplicated on its way to a customer fails the build. Returns a row only on a mismatch.
with amo as (
    select coalesce(sum(price), 0) as revenue
    from {{ ref('stg_amocrm__leads') }}
    where deal_status = 'won'
        and not is_deleted
        and {{ local_date('coalesce(closed_at, updated_at)') }} <= {{ run_date() }}
),

b24 as (
    select coalesce(sum(deals.opportunity), 0) as revenue
    from {{ ref('stg_bitrix24__deals') }} as deals
    left join {{ ref('stg_bitrix24__deal_stages') }} as stages
        on stages.portal = deals.portal and stages.status_id = deals.stage_id
    where coalesce(stages.stage_semantics, case when deals.stage_id like '%WON' then 'won' end) = 'won'
        and not deals.is_deleted
        and {{ local_date('coalesce(deals.close_date, deals.updated_at)') }} <= {{ run_date() }}
),

files as (
    select coalesce(sum(orders.amount), 0) as revenue
    from {{ ref('stg_crm_files__orders') }} as orders
    left join {{ ref('order_status_map') }} as status_map on status_map.raw_status = orders.raw_status
    where coalesce(status_map.status, 'won') = 'won'
        and orders.customer_id is not null
        and {{ local_date('orders.ordered_at') }} <= {{ run_date() }}
),

customers as (
    select coalesce(sum(revenue), 0) as revenue from {{ ref('customer_profitability') }}
)

select
    customers.revenue as customer_revenue,
    amo.revenue + b24.revenue + files.revenue as won_deal_revenue
from customers
cross join amo
cross join b24
cross join files
where round(customers.revenue, 2) <> round(amo.revenue + b24.revenue + files.revenue, 2)
