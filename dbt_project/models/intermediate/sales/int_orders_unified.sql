{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        indexes=[{'columns': ['order_key'], 'unique': True}, {'columns': ['unified_at']}],
        pre_hook=["{{ new_batches_snapshot(read_by=['stg_amocrm__leads', 'stg_bitrix24__deals']) }}",
                  "{{ orders_unified_scope() }}"],
        post_hook=["{{ new_batches_consumed() }}", "{{ orders_unified_inputs_used() }}"],
    )
}}
-- One row per deal or order from every CRM: won ones are revenue, lost ones carry their loss
-- reason, open ones are planned work. Observation ends at var run_date: anything created (or,
-- for closed deals, closed) after it is left out. Amounts are in RUB.
--
-- Incremental: the pre-hooks (macros/orders_scope.sql) find the orders whose row may have
-- changed (changed deals, the file export, deals whose customer moved, orders the run date
-- brought in or left out; every order when a lookup changed), delete their stored rows, and this
-- query derives just those from the sources. unified_at tells snap_deal_stages which rows to
-- compare (int_orders_changed).
-- depends_on: {{ ref('int_identity_nodes_resolved') }}
-- depends_on: {{ ref('int_identity_edges_collected') }}
{{ require_stored_columns(['order_key', 'order_date', 'unified_at']) }}
-- the deal sources are read twice (their rows, their distinct titles): not materialized, or
-- PostgreSQL would copy every deal before reading it
with amo_leads as not materialized (
    select * from {{ ref('stg_amocrm__leads') }}
    {%- if is_incremental() %}
    where lead_key in (select order_key from pg_temp.orders_scope)
    {%- endif %}
),
-- read twice (macros/amocrm_fields.sql); only the leads being derived
amo_values as not materialized (
    select * from {{ ref('stg_amocrm__custom_field_values') }}
    where entity_type = 'lead' and (account, entity_id) in (select account, lead_id from amo_leads)
),
amo_users as (select * from {{ ref('stg_amocrm__users') }}),
amo_loss_reasons as (select * from {{ ref('stg_amocrm__loss_reasons') }}),
amo_statuses as (select * from {{ ref('stg_amocrm__pipeline_statuses') }}),
b24_deals as not materialized (
    select * from {{ ref('stg_bitrix24__deals') }}
    {%- if is_incremental() %}
    where deal_key in (select order_key from pg_temp.orders_scope)
    {%- endif %}
),
b24_stages as (select * from {{ ref('stg_bitrix24__deal_stages') }}),
file_orders as not materialized (
    select * from {{ ref('stg_crm_files__orders') }}
    {%- if is_incremental() %}
    where order_key in (select order_key from pg_temp.orders_scope)
    {%- endif %}
),
status_map as (select * from {{ ref('order_status_map') }}),
catalog as (select * from {{ ref('product_catalog') }}),
field_map as (select * from {{ ref('crm_field_map') }}),
nodes as (select * from {{ ref('int_customer_nodes_resolved') }}),

lead_field_map as (select * from field_map where source = 'amocrm' and entity = 'lead'),

amo_lead_values as ({{ amo_values_mapped('amo_values', 'lead_field_map') }}),

amo_lead_fields as (
    select
        account,
        entity_id as lead_id,
        max(case when role = 'purpose' then field_value end) as purpose,
        max(case when role = 'client_id' then field_value end) as client_id,
        max(case when role = 'utm_source' then field_value end) as utm_source,
        max(case when role = 'utm_medium' then field_value end) as utm_medium,
        max(case when role = 'utm_campaign' then field_value end) as utm_campaign,
        max(case when role = 'utm_term' then field_value end) as utm_term
    from amo_lead_values
    group by account, entity_id
),

amo_orders as (
    select
        amo_leads.lead_key as order_key,
        'amocrm' as source,
        cast(amo_leads.lead_id as text) as source_order_id,
        amo_leads.lead_key as party_node,
        amo_leads.lead_name as title,
        amo_leads.deal_status as status,
        amo_leads.price as amount,
        amo_leads.created_at,
        case when amo_leads.deal_status <> 'open' then coalesce(amo_leads.closed_at, amo_leads.updated_at) end as closed_at,
        cast(null as text) as file_product,
        cast(null as numeric) as quantity,
        cast(null as numeric) as file_cost,
        amo_users.manager_key,
        amo_users.user_name as manager_name,
        coalesce(amo_loss_reasons.loss_reason_name, amo_leads.embedded_loss_reason) as loss_reason,
        amo_statuses.status_name as stage_name,
        amo_statuses.pipeline_name,
        amo_lead_fields.purpose,
        amo_lead_fields.client_id,
        amo_lead_fields.utm_source,
        amo_lead_fields.utm_medium,
        lower(amo_lead_fields.utm_campaign) as utm_campaign,
        amo_lead_fields.utm_term
    from amo_leads
    left join amo_lead_fields
        on amo_lead_fields.account = amo_leads.account and amo_lead_fields.lead_id = amo_leads.lead_id
    left join amo_users
        on amo_users.account = amo_leads.account and amo_users.user_id = amo_leads.responsible_user_id
    left join amo_loss_reasons
        on amo_loss_reasons.account = amo_leads.account and amo_loss_reasons.loss_reason_id = amo_leads.loss_reason_id
    left join amo_statuses
        on amo_statuses.account = amo_leads.account
        and amo_statuses.pipeline_id = amo_leads.pipeline_id
        and amo_statuses.status_id = amo_leads.status_id
    where not amo_leads.is_deleted
),

b24_orders as (
    select
        b24_deals.deal_key as order_key,
        'bitrix24' as source,
        cast(b24_deals.deal_id as text) as source_order_id,
        b24_deals.deal_key as party_node,
        b24_deals.deal_title as title,
        coalesce(
            b24_stages.stage_semantics,
            case
                when b24_deals.stage_id like '%WON' then 'won'
                when b24_deals.stage_id like '%LOSE' then 'lost'
                else 'open'
            end
        ) as status,
        b24_deals.opportunity as amount,
        b24_deals.created_at,
        case
            when coalesce(b24_stages.stage_semantics, 'open') <> 'open' or b24_deals.is_closed
                then coalesce(b24_deals.close_date, b24_deals.updated_at)
        end as closed_at,
        cast(null as text) as file_product,
        cast(null as numeric) as quantity,
        cast(null as numeric) as file_cost,
        'bitrix24:' || b24_deals.portal || ':' || b24_deals.assigned_by_id as manager_key,
        'Bitrix24 user ' || b24_deals.assigned_by_id as manager_name,
        (
            select nullif(b24_deals.record ->> field_map.field_key, '')
            from field_map
            where field_map.source = 'bitrix24' and field_map.entity = 'deal' and field_map.role = 'loss_reason'
            limit 1
        ) as loss_reason,
        b24_stages.stage_name,
        'Bitrix24 category ' || b24_deals.category_id as pipeline_name,
        (
            select nullif(b24_deals.record ->> field_map.field_key, '')
            from field_map
            where field_map.source = 'bitrix24' and field_map.entity = 'deal' and field_map.role = 'purpose'
            limit 1
        ) as purpose,
        (
            select nullif(b24_deals.record ->> field_map.field_key, '')
            from field_map
            where field_map.source = 'bitrix24' and field_map.entity = 'deal' and field_map.role = 'client_id'
            limit 1
        ) as client_id,
        b24_deals.utm_source,
        b24_deals.utm_medium,
        lower(b24_deals.utm_campaign) as utm_campaign,
        b24_deals.utm_term
    from b24_deals
    left join b24_stages
        on b24_stages.portal = b24_deals.portal and b24_stages.status_id = b24_deals.stage_id
    where not b24_deals.is_deleted
),

file_orders_typed as (
    select
        file_orders.order_key,
        'crm_file' as source,
        file_orders.order_id as source_order_id,
        'crm_file_customer:' || file_orders.customer_id as party_node,
        file_orders.product as title,
        coalesce(status_map.status, 'won') as status,
        file_orders.amount,
        file_orders.ordered_at as created_at,
        case when coalesce(status_map.status, 'won') <> 'open' then file_orders.ordered_at end as closed_at,
        file_orders.product as file_product,
        file_orders.quantity,
        file_orders.cost as file_cost,
        'crm_file:' || file_orders.manager as manager_key,
        file_orders.manager as manager_name,
        case when coalesce(status_map.status, 'won') = 'lost' then file_orders.raw_status end as loss_reason,
        file_orders.raw_status as stage_name,
        'file export' as pipeline_name,
        cast(null as text) as purpose,
        cast(null as text) as client_id,
        cast(null as text) as utm_source,
        cast(null as text) as utm_medium,
        cast(null as text) as utm_campaign,
        cast(null as text) as utm_term
    from file_orders
    left join status_map on status_map.raw_status = file_orders.raw_status
    where file_orders.customer_id is not null
),

unioned as (
    select * from amo_orders
    union all
    select * from b24_orders
    union all
    select * from file_orders_typed
),

-- the product: the file's column, else the longest catalog name inside the deal title (looked up
-- once per distinct title: deal titles repeat, and the lookup scans the catalog). The titles come
-- from the sources, not from `unioned`: read twice, that wide union would be materialized
titles as (
    select coalesce(lead_name, '') as title_key from amo_leads where not is_deleted
    union
    select coalesce(deal_title, '') from b24_deals where not is_deleted
    union
    select coalesce(product, '') from file_orders where customer_id is not null
),

title_products as (
    select
        titles.title_key,
        (
            select catalog.product
            from catalog
            where position(lower(catalog.product) in lower(titles.title_key)) > 0
            order by length(catalog.product) desc
            limit 1
        ) as product
    from titles
),

with_product as (
    select
        unioned.*,
        coalesce(unioned.file_product, title_products.product) as product
    from unioned
    left join title_products on title_products.title_key = coalesce(unioned.title, '')
),

final as (
    select
        with_product.order_key,
        with_product.source,
        with_product.source_order_id,
        nodes.customer_id,
        with_product.title,
        with_product.status,
        with_product.status = 'won' as is_won,
        with_product.amount,
        case when with_product.status = 'won' then with_product.amount else 0 end as revenue,
        with_product.created_at,
        with_product.closed_at,
        {{ local_date('coalesce(with_product.closed_at, with_product.created_at)') }} as order_date,
        with_product.product,
        catalog.category,
        with_product.quantity,
        with_product.file_cost,
        with_product.manager_key,
        with_product.manager_name,
        with_product.loss_reason,
        with_product.stage_name,
        with_product.pipeline_name,
        with_product.purpose,
        with_product.client_id,
        with_product.utm_source,
        with_product.utm_medium,
        with_product.utm_campaign,
        with_product.utm_term,
        now() as unified_at
    from with_product
    inner join nodes on nodes.node_key = with_product.party_node
    left join catalog on catalog.product = with_product.product
    where {{ local_date('coalesce(with_product.closed_at, with_product.created_at)') }} <= {{ run_date() }}
)

select * from final
