-- Which campaign acquired each customer, and that customer's share of the campaign's spend.
-- The campaign is the UTM campaign of the customer's first Metrica visit (through the ClientID
-- the CRM recorded), else the UTM campaign of the customer's first deal. Spend up to run_date
-- of each campaign is split equally among the customers it acquired. A customer's first visit is
-- the first of its ClientIDs' first visits (int_client_first_visits), not a sort of every visit.
with first_visits as (select * from {{ ref('int_client_first_visits') }} where visit_date <= {{ run_date() }}),
nodes as (select * from {{ ref('int_customer_nodes_resolved') }} where node_type = 'metrica_client_id'),
orders as (select * from {{ ref('int_orders_unified') }}),
costs as (select * from {{ ref('stg_crm_files__marketing_costs') }}),

first_visit as (
    select distinct on (nodes.customer_id)
        nodes.customer_id,
        lower(first_visits.utm_campaign) as utm_campaign,
        first_visits.visited_at as touched_at
    from first_visits
    inner join nodes on nodes.source_key = first_visits.client_id
    order by nodes.customer_id, first_visits.visited_at, first_visits.visit_key
),

first_deal as (
    select distinct on (customer_id)
        customer_id,
        utm_campaign,
        created_at as touched_at
    from orders
    order by customer_id, created_at, order_key
),

attributed as (
    select
        coalesce(first_visit.customer_id, first_deal.customer_id) as customer_id,
        case
            when first_visit.customer_id is not null then first_visit.utm_campaign
            else first_deal.utm_campaign
        end as acquisition_campaign,
        case when first_visit.customer_id is not null then 'metrica' else 'crm' end as attribution_source
    from first_visit
    full outer join first_deal on first_deal.customer_id = first_visit.customer_id
),

spend as (
    select utm_campaign, sum(cost) as spend
    from costs
    where utm_campaign is not null and cost_date <= {{ run_date() }}
    group by utm_campaign
),

acquired as (
    select acquisition_campaign, count(*) as customers_acquired
    from attributed
    where acquisition_campaign is not null
    group by acquisition_campaign
),

final as (
    select
        attributed.customer_id,
        attributed.acquisition_campaign,
        attributed.attribution_source,
        coalesce(round(spend.spend / nullif(acquired.customers_acquired, 0), 2), 0) as acquisition_cost
    from attributed
    left join acquired on acquired.acquisition_campaign = attributed.acquisition_campaign
    left join spend on spend.utm_campaign = attributed.acquisition_campaign
)

select * from final
