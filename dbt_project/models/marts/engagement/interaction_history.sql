-- Episodic history: one row per contact episode (call, meeting, email, chat, note, complaint,
-- deal stage change) with channel, manager, outcome and links to the deal and the customer.
-- Free text stays in the intermediate layer: it may hold personal data.
with interactions as (select * from {{ ref('int_customer_interactions_resolved') }}),

final as (
    select
        interaction_key as interaction_id,
        customer_id,
        deal_key as deal_id,
        source,
        occurred_at,
        occurred_date,
        channel,
        activity,
        direction,
        is_complaint,
        manager_key,
        manager_name,
        outcome
    from interactions
)

select * from final
