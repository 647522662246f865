-- Why a customer may have left, from three sources: loss reasons of lost deals, answers to exit
-- surveys, complaints. One row per piece of evidence.
with orders as (select * from {{ ref('int_orders_unified') }}),
responses as (select * from {{ ref('int_survey_responses_linked') }}),
interactions as (select * from {{ ref('int_customer_interactions_resolved') }}),

final as (
    select customer_id, 'loss_reason' as evidence_source, loss_reason as evidence_text,
        coalesce(closed_at, created_at) as observed_at
    from orders
    where status = 'lost' and loss_reason is not null
    union all
    select customer_id, 'exit_survey' as evidence_source, exit_reason as evidence_text, submitted_at as observed_at
    from responses
    where exit_reason is not null
    union all
    select customer_id, 'complaint' as evidence_source, coalesce(body_text, 'complaint') as evidence_text,
        occurred_at as observed_at
    from interactions
    where is_complaint
)

select * from final
