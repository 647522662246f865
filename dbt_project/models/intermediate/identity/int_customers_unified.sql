-- One row per customer: the card assembled from all of the customer's CRM records. For each
-- attribute the most trusted source wins (amoCRM, then Bitrix24, then the file export), and a
-- company's name wins over its contacts' (the customer of a B2B deal is the company).
--
-- Incremental by customer (macros/customer_scope.sql): a night recomputes the customers
-- int_customers_changed logged, and every customer when the amoCRM users (managers' names) or
-- the field map changed; all customers again took 12–14 s of a medium new day (session 11).
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        indexes=[{'columns': ['customer_id'], 'unique': True}],
        pre_hook=["{{ customer_scope(lookups=[ref('stg_amocrm__users'), ref('crm_field_map')]) }}"],
        post_hook=["{{ customer_scope_read(lookups=[ref('stg_amocrm__users'), ref('crm_field_map')]) }}"],
    )
}}
-- depends_on: {{ ref('int_customers_changed') }}, {{ ref('stg_amocrm__users') }}, {{ ref('crm_field_map') }}
with nodes as (select * from {{ ref('int_customer_nodes_resolved') }} where {{ in_customer_scope('customer_id') }}),
parties as (select * from {{ ref('int_party_records_collected') }}),

records as (
    select parties.*, nodes.customer_id
    from parties
    inner join nodes on nodes.node_key = parties.node_key
),

keys as (
    select
        customer_id,
        min(case when node_type = 'email' then source_key end) as any_email,
        min(case when node_type = 'phone' then source_key end) as any_phone,
        count(*) filter (where node_type = 'metrica_client_id') as client_ids,
        count(distinct node_type) filter (where node_type not in ('email', 'phone')) as source_kinds,
        min(node_key) as smallest_node_key
    from nodes
    group by customer_id
),

attributes as (
    select
        customer_id,
        bool_or(is_company) as is_company,
        (array_agg(name order by is_company desc, source_priority, created_at nulls last, node_key)
            filter (where name is not null))[1] as name,
        (array_agg(email order by source_priority, created_at nulls last, node_key)
            filter (where email is not null))[1] as email,
        (array_agg(phone order by source_priority, created_at nulls last, node_key)
            filter (where phone is not null))[1] as phone,
        (array_agg(birthday order by source_priority, node_key) filter (where birthday is not null))[1] as birthday,
        (array_agg(city order by source_priority, node_key) filter (where city is not null))[1] as city,
        (array_agg(industry order by source_priority, node_key) filter (where industry is not null))[1] as industry,
        (array_agg(manager_key order by is_company desc, source_priority, node_key)
            filter (where manager_key is not null))[1] as record_manager_key,
        (array_agg(manager_name order by is_company desc, source_priority, node_key)
            filter (where manager_key is not null))[1] as record_manager_name,
        min(created_at) as first_seen_at,
        string_agg(distinct record_type, ',' order by record_type) as record_types
    from records
    group by customer_id
),

final as (
    select
        keys.customer_id,
        case when coalesce(attributes.is_company, false) then 'b2b' else 'b2c' end as customer_type,
        attributes.name,
        coalesce(attributes.email, keys.any_email) as email,
        coalesce(attributes.phone, keys.any_phone) as phone,
        attributes.birthday,
        attributes.city,
        attributes.industry,
        attributes.record_manager_key,
        attributes.record_manager_name,
        attributes.first_seen_at,
        coalesce(attributes.record_types, '') as record_types,
        keys.client_ids as metrica_client_ids,
        keys.source_kinds,
        keys.smallest_node_key
    from keys
    left join attributes on attributes.customer_id = keys.customer_id
)

select * from final
