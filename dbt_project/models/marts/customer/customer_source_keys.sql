-- How each source identifies each customer, by the key convention of docs/demo-company.md:
-- (customer_id, source, source_key) with source one of amocrm_contact, amocrm_company,
-- bitrix24_contact, bitrix24_company, crm_file_customer, metrica_client_id, email, phone.
with nodes as (select * from {{ ref('int_customer_nodes_resolved') }}),

final as (
    select distinct
        customer_id,
        node_type as source,
        source_key
    from nodes
    where node_type in (
        'amocrm_contact', 'amocrm_company', 'bitrix24_contact', 'bitrix24_company',
        'crm_file_customer', 'metrica_client_id', 'email', 'phone'
    )
)

select * from final
