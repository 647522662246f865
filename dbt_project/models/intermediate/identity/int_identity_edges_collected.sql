-- The identity graph: an edge joins two nodes known to be the same customer. Nodes are source
-- records ('amocrm_contact:<account>:<id>', 'bitrix24_deal:<portal>:<id>', 'crm_file_customer:<id>',
-- 'survey_response:…') and shared keys ('email:<email>', 'phone:<7…>', 'metrica_client_id:<id>').
-- Edges are stored in both directions plus a self-loop per node, which is what label propagation needs.
with amo_values as (select * from {{ ref('stg_amocrm__custom_field_values') }}),
amo_contacts as (select * from {{ ref('stg_amocrm__contacts') }}),
amo_leads as (select * from {{ ref('stg_amocrm__leads') }}),
b24_contacts as (select * from {{ ref('stg_bitrix24__contacts') }}),
b24_communications as (select * from {{ ref('stg_bitrix24__communications') }}),
b24_deals as (select * from {{ ref('stg_bitrix24__deals') }}),
file_customers as (select * from {{ ref('stg_crm_files__customers') }}),
file_orders as (select * from {{ ref('stg_crm_files__orders') }}),
file_interactions as (select * from {{ ref('stg_crm_files__interactions') }}),
responses as (select * from {{ ref('stg_surveys__responses') }}),
parties as (select * from {{ ref('int_party_records_collected') }}),
field_map as (select * from {{ ref('crm_field_map') }}),
ignored as (select key_type || ':' || key_value as node_key from {{ ref('identity_ignore') }}),

amo_keys as (
    select
        'amocrm_' || amo_values.entity_type || ':' || amo_values.account || ':' || amo_values.entity_id as node_a,
        case field_map.role
            when 'email' then 'email:' || {{ normalise_email('amo_values.field_value') }}
            when 'phone' then 'phone:' || {{ normalise_phone('amo_values.field_value') }}
            when 'client_id' then 'metrica_client_id:' || nullif(amo_values.field_value, '0')
        end as node_b
    from amo_values
    inner join field_map
        on field_map.source = 'amocrm'
        and field_map.entity = amo_values.entity_type
        and field_map.role in ('email', 'phone', 'client_id')
        and (field_map.field_key = amo_values.field_name or field_map.field_key = amo_values.field_code)
),

amo_contact_companies as (
    select
        amo_contacts.contact_key as node_a,
        'amocrm_company:' || amo_contacts.account || ':' || (company.value ->> 'id') as node_b
    from amo_contacts
    cross join lateral jsonb_array_elements(amo_contacts.companies) as company (value)
),

amo_lead_parties as (
    select amo_leads.lead_key as node_a, 'amocrm_contact:' || amo_leads.account || ':' || (contact.value ->> 'id') as node_b
    from amo_leads
    cross join lateral jsonb_array_elements(amo_leads.contacts) as contact (value)
    union all
    select amo_leads.lead_key as node_a, 'amocrm_company:' || amo_leads.account || ':' || (company.value ->> 'id') as node_b
    from amo_leads
    cross join lateral jsonb_array_elements(amo_leads.companies) as company (value)
),

b24_keys as (
    select
        'bitrix24_' || entity_type || ':' || portal || ':' || entity_id as node_a,
        case kind
            when 'email' then 'email:' || {{ normalise_email('value') }}
            when 'phone' then 'phone:' || {{ normalise_phone('value') }}
        end as node_b
    from b24_communications
),

b24_links as (
    select contact_key as node_a, 'bitrix24_company:' || portal || ':' || company_id as node_b
    from b24_contacts
    where company_id is not null
    union all
    select deal_key as node_a, 'bitrix24_contact:' || portal || ':' || contact_id as node_b
    from b24_deals
    where contact_id is not null
    union all
    select deal_key as node_a, 'bitrix24_company:' || portal || ':' || company_id as node_b
    from b24_deals
    where company_id is not null
    union all
    select
        b24_deals.deal_key as node_a,
        'metrica_client_id:' || nullif(nullif(trim(b24_deals.record ->> field_map.field_key), ''), '0') as node_b
    from b24_deals
    inner join field_map
        on field_map.source = 'bitrix24' and field_map.entity = 'deal' and field_map.role = 'client_id'
),

file_keys as (
    select customer_key as node_a, 'email:' || email as node_b from file_customers
    union all
    select customer_key as node_a, 'phone:' || phone as node_b from file_customers
),

survey_keys as (
    select response_key as node_a, 'email:' || email as node_b from responses
    union all
    select response_key as node_a, 'phone:' || phone as node_b from responses
    union all
    select response_key as node_a, 'metrica_client_id:' || client_id as node_b from responses
),

-- nodes that must exist even without any edge (a lone record is its own customer)
lone_nodes as (
    select node_key as node_a, node_key as node_b from parties
    union all
    select lead_key as node_a, lead_key as node_b from amo_leads
    union all
    select deal_key as node_a, deal_key as node_b from b24_deals
    union all
    select 'crm_file_customer:' || customer_id as node_a, 'crm_file_customer:' || customer_id as node_b
    from file_orders
    where customer_id is not null
    union all
    select 'crm_file_customer:' || customer_id as node_a, 'crm_file_customer:' || customer_id as node_b
    from file_interactions
    where customer_id is not null
    union all
    select response_key as node_a, response_key as node_b from responses
),

directed as (
    select node_a, node_b from amo_keys
    union all
    select node_a, node_b from amo_contact_companies
    union all
    select node_a, node_b from amo_lead_parties
    union all
    select node_a, node_b from b24_keys
    union all
    select node_a, node_b from b24_links
    union all
    select node_a, node_b from file_keys
    union all
    select node_a, node_b from survey_keys
),

valid as (
    select node_a, node_b
    from directed
    where node_a is not null
        and node_b is not null
        and node_b not in (select node_key from ignored)
),

final as (
    select node_a, node_b from valid
    union
    select node_b as node_a, node_a as node_b from valid
    union
    select node_a, node_a as node_b from valid
    union
    select node_b as node_a, node_b as node_b from valid
    union
    select node_a, node_b from lone_nodes
)

select * from final
