{{
    config(
        materialized='incremental',
        incremental_strategy='replace_keys',
        unique_key='record_node',
        on_schema_change='fail',
        indexes=[{'columns': ['record_node'], 'unique': True}, {'columns': ['changed_at']}],
        pre_hook=["{{ new_batches_snapshot() }}"],
        post_hook=["{{ new_batches_consumed() }}"],
    )
}}
-- The identity graph, one row per source record: `neighbours` are the nodes the record is known
-- to be the same customer as — shared keys ('email:<email>', 'phone:<7…>', 'metrica_client_id:<id>')
-- and linked records — plus the record itself. Records are amoCRM contacts, companies and leads,
-- Bitrix24 contacts, companies and deals, file customers ('crm_file_customer:<id>') and survey
-- responses. An empty array is a record that is gone; it stays so that int_identity_nodes_resolved
-- sees its component change.
--
-- Incremental: the records whose raw rows arrived in load batches this model has not read
-- (macros/new_batches.sql), plus stored records no source holds any more, are recomputed; a row is
-- rewritten only when its neighbours (or the identity rules) changed, and changed_at then tells
-- int_identity_nodes_resolved which components to re-resolve. A change of the crm_field_map or
-- identity_ignore seeds is seen (rules_hash) and recomputes every record; a change of this SQL
-- needs `dbt build --full-refresh -s int_identity_edges_collected+`.
-- depends_on: {{ ref('stg_amocrm__companies') }}, {{ ref('stg_bitrix24__companies') }}
{{ require_stored_columns(['record_node', 'neighbours', 'rules_hash', 'changed_at']) }}
{%- set incremental = is_incremental() -%}
with
field_map as (select * from {{ ref('crm_field_map') }}),
ignored as (select key_type || ':' || key_value as node_key from {{ ref('identity_ignore') }}),

-- the rules that turn records into edges; stored on every row, so a seed change is noticed
rules as (
    select md5(
        coalesce((
            select string_agg(concat_ws('|', source, entity, role, field_key), ',' order by source, entity, role, field_key)
            from field_map
            where role in ('email', 'phone', 'client_id')
        ), '')
        || '#' || coalesce((select string_agg(node_key, ',' order by node_key) from ignored), '')
    ) as rules_hash
),

{% if incremental -%}
-- records with a row in an unread batch (macros/identity.sql)
touched_loaded as ({{ identity_records_loaded() }}),

-- every record the sources hold now (all are recomputed when the identity rules change)
current_records as (
    {%- for model, key in [
        ('stg_amocrm__contacts', 'contact_key'), ('stg_amocrm__companies', 'company_key'),
        ('stg_amocrm__leads', 'lead_key'), ('stg_bitrix24__contacts', 'contact_key'),
        ('stg_bitrix24__companies', 'company_key'), ('stg_bitrix24__deals', 'deal_key'),
    ] + identity_staged_records() %}
    select {{ key }} as record_node from {{ ref(model) }}
    {{ "union all" if not loop.last }}
    {%- endfor %}
),

-- stored survey responses no source holds any more (withdrawn from a re-read export). Only
-- these can vanish unseen: the CRM APIs' raw tables keep every record (a deletion arrives as a
-- flagged row, in touched_loaded) and file customers are touched whole below when an export was
-- loaded again. Checking every stored record against every current one cost 3 s of a 10 s
-- medium new day (bench, session 10)
vanished as (
    select stored.record_node
    from {{ this }} as stored
    where stored.record_node like 'survey\_response:%'
        and cardinality(stored.neighbours) > 0
        and not exists (
            select from {{ ref('stg_surveys__responses') }} as responses
            where responses.response_key = stored.record_node
        )
),

rules_changed as (
    select (select stored.rules_hash from {{ this }} as stored limit 1)
        is distinct from (select rules.rules_hash from rules) as changed
),

touched as (
    select record_node from touched_loaded
    union
    select record_node from vanished
    union
    -- a file customer is named by three exports; a reload that drops it leaves no row to see
    select stored.record_node
    from {{ this }} as stored
    where stored.record_node like 'crm\_file\_customer:%' and {{ file_export_reloaded() }}
    union
    select record_node from current_records where (select changed from rules_changed)
),

{% endif -%}
-- read twice (macros/amocrm_fields.sql); the touched records' values are looked up by the index on
-- their node (an array: a semi-join to `touched`, whose size the planner cannot know, hashed it
-- and scanned every value)
amo_values as not materialized (
    select * from {{ ref('stg_amocrm__custom_field_values') }}
    {%- if incremental %}
    where {{ amocrm_value_node() }} = any(array(select record_node from touched where record_node like 'amocrm\_%'))
    {%- endif %}
),
amo_contacts as (select * from {{ ref('stg_amocrm__contacts') }}{{ identity_only_touched('contact_key') }}),
amo_leads as (select * from {{ ref('stg_amocrm__leads') }}{{ identity_only_touched('lead_key') }}),
b24_contacts as (select * from {{ ref('stg_bitrix24__contacts') }}{{ identity_only_touched('contact_key') }}),
b24_communications as (
    select * from {{ ref('stg_bitrix24__communications') }}
    {{- identity_only_touched("'bitrix24_' || entity_type || ':' || portal || ':' || entity_id") }}
),
b24_deals as (select * from {{ ref('stg_bitrix24__deals') }}{{ identity_only_touched('deal_key') }}),
file_customers as (select * from {{ ref('stg_crm_files__customers') }}{{ identity_only_touched('customer_key') }}),
file_orders as (
    select * from {{ ref('stg_crm_files__orders') }}{{ identity_only_touched("'crm_file_customer:' || customer_id") }}
),
file_interactions as (
    select * from {{ ref('stg_crm_files__interactions') }}{{ identity_only_touched("'crm_file_customer:' || customer_id") }}
),
responses as (select * from {{ ref('stg_surveys__responses') }}{{ identity_only_touched('response_key') }}),
parties as (select * from {{ ref('int_party_records_collected') }}{{ identity_only_touched('node_key') }}),
amo_key_fields as (
    select * from field_map where source = 'amocrm' and role in ('email', 'phone', 'client_id')
),

amo_mapped as ({{ amo_values_mapped('amo_values', 'amo_key_fields') }}),

amo_keys as (
    select
        {{ amocrm_value_node() }} as node_a,
        case role
            when 'email' then 'email:' || {{ normalise_email('field_value') }}
            when 'phone' then 'phone:' || {{ normalise_phone('field_value') }}
            when 'client_id' then 'metrica_client_id:' || nullif(field_value, '0')
        end as node_b
    from amo_mapped
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

pairs as (
    select node_a as record_node, node_b from valid
    union all
    select node_a as record_node, node_a as node_b from valid
    union all
    select node_a as record_node, node_b from lone_nodes
),

grouped as (
    select record_node, array_agg(distinct node_b order by node_b) as neighbours
    from pairs
    group by record_node
),

{% if incremental -%}
recomputed as (
    select touched.record_node, coalesce(grouped.neighbours, cast('{}' as text[])) as neighbours
    from touched
    left join grouped on grouped.record_node = touched.record_node
),

final as (
    select
        recomputed.record_node,
        recomputed.neighbours,
        rules.rules_hash,
        case
            when stored.neighbours = recomputed.neighbours then stored.changed_at
            else now()
        end as changed_at
    from recomputed
    cross join rules
    left join {{ this }} as stored on stored.record_node = recomputed.record_node
    where stored.record_node is null and cardinality(recomputed.neighbours) > 0
        or stored.neighbours <> recomputed.neighbours
        or stored.rules_hash <> rules.rules_hash
)
{%- else -%}
final as (
    select grouped.record_node, grouped.neighbours, rules.rules_hash, now() as changed_at
    from grouped
    cross join rules
)
{%- endif %}

select * from final
