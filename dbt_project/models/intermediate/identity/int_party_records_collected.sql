-- Every CRM record that stands for a customer (a person or a company), with the attributes the
-- customer card needs, in one shape. node_key is the record's node in the identity graph.
with amo_contacts as (select * from {{ ref('stg_amocrm__contacts') }}),
amo_companies as (select * from {{ ref('stg_amocrm__companies') }}),
-- read twice (macros/amocrm_fields.sql)
amo_values as not materialized (select * from {{ ref('stg_amocrm__custom_field_values') }}),
amo_users as (select * from {{ ref('stg_amocrm__users') }}),
b24_contacts as (select * from {{ ref('stg_bitrix24__contacts') }}),
b24_companies as (select * from {{ ref('stg_bitrix24__companies') }}),
b24_communications as (select * from {{ ref('stg_bitrix24__communications') }}),
file_customers as (select * from {{ ref('stg_crm_files__customers') }}),
-- the cards' fields only: the leads' values (most of them) find no mapping and drop out at the join
field_map as (
    select * from {{ ref('crm_field_map') }} where source = 'amocrm' and entity in ('contact', 'company')
),

amo_mapped as ({{ amo_values_mapped('amo_values', 'field_map') }}),

amo_fields as (
    select
        account,
        entity_type,
        entity_id,
        role,
        field_value,
        row_number() over (
            partition by account, entity_type, entity_id, role
            order by value_position
        ) as value_rank
    from amo_mapped
),

amo_first_fields as (
    select
        account,
        entity_type,
        entity_id,
        max(case when role = 'email' then {{ normalise_email('field_value') }} end) as email,
        max(case when role = 'phone' then {{ normalise_phone('field_value') }} end) as phone,
        max(case when role = 'birthday' then field_value end) as birthday_text
    from amo_fields
    where value_rank = 1
    group by account, entity_type, entity_id
),

b24_first_communications as (
    select
        portal,
        entity_type,
        entity_id,
        (array_agg({{ normalise_email('value') }} order by value) filter (
            where kind = 'email' and {{ normalise_email('value') }} is not null))[1] as email,
        (array_agg({{ normalise_phone('value') }} order by value) filter (
            where kind = 'phone' and {{ normalise_phone('value') }} is not null))[1] as phone
    from b24_communications
    group by portal, entity_type, entity_id
),

amo_contact_records as (
    select
        amo_contacts.contact_key as node_key,
        'amocrm_contact' as record_type,
        cast(amo_contacts.contact_id as text) as source_key,
        false as is_company,
        amo_contacts.contact_name as name,
        amo_first_fields.email,
        amo_first_fields.phone,
        case
            when amo_first_fields.birthday_text ~ '^-?[0-9]+$'
                then cast(to_timestamp(cast(amo_first_fields.birthday_text as bigint)) at time zone 'UTC' as date)
            when amo_first_fields.birthday_text ~ '^\d{4}-\d{2}-\d{2}'
                then cast(left(amo_first_fields.birthday_text, 10) as date)
            when amo_first_fields.birthday_text ~ '^\d{2}\.\d{2}\.\d{4}$'
                then to_date(amo_first_fields.birthday_text, 'DD.MM.YYYY')
        end as birthday,
        cast(null as text) as city,
        cast(null as text) as industry,
        amo_users.manager_key,
        amo_users.user_name as manager_name,
        amo_contacts.created_at,
        1 as source_priority
    from amo_contacts
    left join amo_first_fields
        on amo_first_fields.account = amo_contacts.account
        and amo_first_fields.entity_type = 'contact'
        and amo_first_fields.entity_id = amo_contacts.contact_id
    left join amo_users
        on amo_users.account = amo_contacts.account
        and amo_users.user_id = amo_contacts.responsible_user_id
    where not amo_contacts.is_deleted
),

amo_company_records as (
    select
        amo_companies.company_key as node_key,
        'amocrm_company' as record_type,
        cast(amo_companies.company_id as text) as source_key,
        true as is_company,
        amo_companies.company_name as name,
        amo_first_fields.email,
        amo_first_fields.phone,
        cast(null as date) as birthday,
        cast(null as text) as city,
        cast(null as text) as industry,
        amo_users.manager_key,
        amo_users.user_name as manager_name,
        amo_companies.created_at,
        1 as source_priority
    from amo_companies
    left join amo_first_fields
        on amo_first_fields.account = amo_companies.account
        and amo_first_fields.entity_type = 'company'
        and amo_first_fields.entity_id = amo_companies.company_id
    left join amo_users
        on amo_users.account = amo_companies.account
        and amo_users.user_id = amo_companies.responsible_user_id
    where not amo_companies.is_deleted
),

b24_contact_records as (
    select
        b24_contacts.contact_key as node_key,
        'bitrix24_contact' as record_type,
        cast(b24_contacts.contact_id as text) as source_key,
        false as is_company,
        b24_contacts.contact_name as name,
        b24_first_communications.email,
        b24_first_communications.phone,
        b24_contacts.birthday,
        b24_contacts.city,
        cast(null as text) as industry,
        'bitrix24:' || b24_contacts.portal || ':' || b24_contacts.assigned_by_id as manager_key,
        'Bitrix24 user ' || b24_contacts.assigned_by_id as manager_name,
        b24_contacts.created_at,
        2 as source_priority
    from b24_contacts
    left join b24_first_communications
        on b24_first_communications.portal = b24_contacts.portal
        and b24_first_communications.entity_type = 'contact'
        and b24_first_communications.entity_id = b24_contacts.contact_id
    where not b24_contacts.is_deleted
),

b24_company_records as (
    select
        b24_companies.company_key as node_key,
        'bitrix24_company' as record_type,
        cast(b24_companies.company_id as text) as source_key,
        true as is_company,
        b24_companies.company_name as name,
        b24_first_communications.email,
        b24_first_communications.phone,
        cast(null as date) as birthday,
        b24_companies.city,
        b24_companies.industry,
        'bitrix24:' || b24_companies.portal || ':' || b24_companies.assigned_by_id as manager_key,
        'Bitrix24 user ' || b24_companies.assigned_by_id as manager_name,
        b24_companies.created_at,
        2 as source_priority
    from b24_companies
    left join b24_first_communications
        on b24_first_communications.portal = b24_companies.portal
        and b24_first_communications.entity_type = 'company'
        and b24_first_communications.entity_id = b24_companies.company_id
    where not b24_companies.is_deleted
),

file_records as (
    select
        customer_key as node_key,
        'crm_file_customer' as record_type,
        customer_id as source_key,
        coalesce(customer_type in ('b2b', 'company', 'юр', 'юрлицо', 'юр. лицо', 'организация'), false) as is_company,
        customer_name as name,
        email,
        phone,
        cast(null as date) as birthday,
        city,
        cast(null as text) as industry,
        cast(null as text) as manager_key,
        cast(null as text) as manager_name,
        cast(null as timestamptz) as created_at,
        3 as source_priority
    from file_customers
),

final as (
    select * from amo_contact_records
    union all
    select * from amo_company_records
    union all
    select * from b24_contact_records
    union all
    select * from b24_company_records
    union all
    select * from file_records
)

select * from final
