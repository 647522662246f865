-- Survey responses linked to customers through email, phone or ClientID (identity graph).
with responses as (select * from {{ ref('stg_surveys__responses') }}),
nodes as (select * from {{ ref('int_customer_nodes_resolved') }}),

final as (
    select
        responses.response_key,
        nodes.customer_id,
        responses.channel,
        responses.form_id,
        responses.submitted_at,
        responses.purpose,
        responses.nps,
        responses.satisfaction,
        responses.exit_reason,
        responses.interests,
        responses.stated_values
    from responses
    inner join nodes on nodes.node_key = responses.response_key
    where {{ local_date('responses.submitted_at') }} <= {{ run_date() }}
)

select * from final
