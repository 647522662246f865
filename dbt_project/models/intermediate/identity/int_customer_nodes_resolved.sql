-- Every identity node that belongs to a customer, with the customer's stable id: md5 of the
-- smallest node key in its component. A component is a customer when it holds at least one CRM
-- record (person, company, deal or file customer); web visitors and survey respondents that match
-- no CRM record stay out of the customer base.
with nodes as (select * from {{ ref('int_identity_nodes_resolved') }}),

customer_components as (
    select distinct component_key
    from nodes
    where node_type in (
        'amocrm_contact', 'amocrm_company', 'amocrm_lead',
        'bitrix24_contact', 'bitrix24_company', 'bitrix24_deal', 'crm_file_customer'
    )
),

final as (
    select
        nodes.node_key,
        nodes.node_type,
        case
            when nodes.node_type like 'amocrm\_%' or nodes.node_type like 'bitrix24\_%'
                then substring(nodes.node_key from '[^:]+$')
            else substr(nodes.node_key, length(nodes.node_type) + 2)
        end as source_key,
        md5(nodes.component_key) as customer_id
    from nodes
    inner join customer_components on customer_components.component_key = nodes.component_key
)

select * from final
