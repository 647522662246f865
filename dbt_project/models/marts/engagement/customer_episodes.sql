-- Per customer, what the episodic memory of the company says: purchases and contacts in the
-- last 6 and 12 months, the last contact, open deals (planned work), complaints, stated
-- preferences, and how complete the business contact card is.
--
-- Incremental by customer (macros/customer_scope.sql; 13–17 s of a medium new day rebuilt every
-- customer): the customers int_customers_changed logged, every customer when the card_fields
-- seed changed, and the customers whose 6- or 12-month windows the run date moved an order or a
-- contact into or out of. The table is carried over from the publication before last
-- (macros/carry_marts.sql); what it has read is kept per table, so the copy catches up.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=["{{ customer_scope(lookups=[ref('card_fields')], also=customer_episodes_windows_moved()) }}"],
        post_hook=["{{ customer_scope_read(lookups=[ref('card_fields')]) }}"],
    )
}}
-- depends_on: {{ ref('int_customers_changed') }}, {{ ref('int_customer_nodes_resolved') }}
with customers as (select * from {{ ref('int_customers_unified') }} where {{ in_customer_scope('customer_id') }}),
orders as (select * from {{ ref('int_orders_unified') }} where {{ in_customer_scope('customer_id') }}),
-- read twice (contacts, last_channel): not materialized, or PostgreSQL would copy every contact first
interactions as not materialized (
    select * from {{ ref('int_customer_interactions_resolved') }} where {{ in_customer_scope('customer_id') }}
),
responses as (
    select * from {{ ref('int_survey_responses_linked') }} where {{ in_customer_scope('customer_id') }}
),
card_fields as (select * from {{ ref('card_fields') }}),

purchases as (
    select
        customer_id,
        count(distinct order_date) filter (where order_date > {{ run_date() }} - interval '6 months') as purchases_6m,
        count(distinct order_date) filter (where order_date > {{ run_date() }} - interval '12 months') as purchases_12m,
        count(*) filter (where status = 'open') as open_deals,
        coalesce(sum(amount) filter (where status = 'open'), 0) as open_deal_amount,
        max(order_date) filter (where is_won) as last_purchase_date,
        (array_agg(purpose order by created_at desc) filter (where purpose is not null))[1] as deal_purpose,
        (array_agg(manager_key order by created_at desc) filter (where manager_key is not null))[1] as deal_manager_key,
        (array_agg(manager_name order by created_at desc) filter (where manager_key is not null))[1] as deal_manager_name
    from orders
    group by customer_id
),

contacts as (
    select
        customer_id,
        count(*) filter (where occurred_date > {{ run_date() }} - interval '6 months') as contacts_6m,
        count(*) filter (where occurred_date > {{ run_date() }} - interval '12 months') as contacts_12m,
        max(occurred_at) as last_contact_at,
        count(*) filter (where is_complaint) as complaints,
        count(*) filter (where is_complaint and occurred_date > {{ run_date() }} - interval '12 months')
            as complaints_12m
    from interactions
    where channel <> 'stage_change'
    group by customer_id
),

-- the channel of the last contact, found by joining the last time back: an ordered array_agg per
-- customer sorts and keeps every contact (twice the time on 5 M contacts); ties take the first
-- channel by name, so the answer does not depend on the plan
last_channel as (
    select interactions.customer_id, min(interactions.channel) as last_contact_channel
    from interactions
    inner join contacts
        on contacts.customer_id = interactions.customer_id
        and contacts.last_contact_at = interactions.occurred_at
    where interactions.channel <> 'stage_change'
    group by interactions.customer_id
),

stated as (
    select
        customer_id,
        (array_agg(purpose order by submitted_at desc) filter (where purpose is not null))[1] as survey_purpose,
        (array_agg(interests order by submitted_at desc) filter (where interests is not null))[1] as interests
    from responses
    group by customer_id
),

card as (
    select
        customers.customer_id,
        customers.name is not null as has_name,
        customers.phone is not null as has_phone,
        customers.email is not null as has_email,
        customers.city is not null as has_city,
        (customers.birthday is not null or customers.industry is not null) as has_birthday_or_industry,
        (purchases.deal_purpose is not null or stated.survey_purpose is not null) as has_stated_purpose,
        coalesce(purchases.deal_manager_key, customers.record_manager_key) is not null as has_manager
    from customers
    left join purchases on purchases.customer_id = customers.customer_id
    left join stated on stated.customer_id = customers.customer_id
),

-- the seed's weights of the seven known fields, as one row; a field the seed leaves out weighs
-- nothing and is never reported missing. Scoring the card's columns against this row replaced an
-- unpivot to seven rows per customer and a sort of them (2.5 s of 14 at medium scale)
weights as (
    select
        coalesce(sum(weight) filter (where field = 'name'), 0) as w_name,
        coalesce(sum(weight) filter (where field = 'phone'), 0) as w_phone,
        coalesce(sum(weight) filter (where field = 'email'), 0) as w_email,
        coalesce(sum(weight) filter (where field = 'city'), 0) as w_city,
        coalesce(sum(weight) filter (where field = 'birthday_or_industry'), 0) as w_birthday_or_industry,
        coalesce(sum(weight) filter (where field = 'stated_purpose'), 0) as w_stated_purpose,
        coalesce(sum(weight) filter (where field = 'manager'), 0) as w_manager,
        sum(weight) filter (where field in (
            'name', 'phone', 'email', 'city', 'birthday_or_industry', 'stated_purpose', 'manager'
        )) as w_total,
        array_agg(field) as fields
    from card_fields
),

completeness as (
    select
        card.customer_id,
        round(
            (case when card.has_name then weights.w_name else 0 end
            + case when card.has_phone then weights.w_phone else 0 end
            + case when card.has_email then weights.w_email else 0 end
            + case when card.has_city then weights.w_city else 0 end
            + case when card.has_birthday_or_industry then weights.w_birthday_or_industry else 0 end
            + case when card.has_stated_purpose then weights.w_stated_purpose else 0 end
            + case when card.has_manager then weights.w_manager else 0 end) / weights.w_total,
            4
        ) as card_completeness,
        -- in the order of the field names
        nullif(concat_ws(',',
            case when not card.has_birthday_or_industry and 'birthday_or_industry' = any(weights.fields)
                then 'birthday_or_industry' end,
            case when not card.has_city and 'city' = any(weights.fields) then 'city' end,
            case when not card.has_email and 'email' = any(weights.fields) then 'email' end,
            case when not card.has_manager and 'manager' = any(weights.fields) then 'manager' end,
            case when not card.has_name and 'name' = any(weights.fields) then 'name' end,
            case when not card.has_phone and 'phone' = any(weights.fields) then 'phone' end,
            case when not card.has_stated_purpose and 'stated_purpose' = any(weights.fields)
                then 'stated_purpose' end
        ), '') as card_missing_fields
    from card
    cross join weights
    where weights.w_total is not null
),

final as (
    select
        customers.customer_id,
        coalesce(purchases.purchases_6m, 0) as purchases_6m,
        coalesce(purchases.purchases_12m, 0) as purchases_12m,
        purchases.last_purchase_date,
        coalesce(contacts.contacts_6m, 0) as contacts_6m,
        coalesce(contacts.contacts_12m, 0) as contacts_12m,
        contacts.last_contact_at,
        last_channel.last_contact_channel,
        coalesce(purchases.open_deals, 0) as open_deals,
        coalesce(purchases.open_deal_amount, 0) as open_deal_amount,
        coalesce(contacts.complaints, 0) as complaints,
        coalesce(contacts.complaints_12m, 0) as complaints_12m,
        coalesce(purchases.deal_purpose, stated.survey_purpose) as stated_preferences,
        stated.interests as stated_interests,
        coalesce(purchases.deal_manager_key, customers.record_manager_key) as manager_key,
        coalesce(purchases.deal_manager_name, customers.record_manager_name) as manager_name,
        coalesce(completeness.card_completeness, 0) as card_completeness,
        completeness.card_missing_fields
    from customers
    left join purchases on purchases.customer_id = customers.customer_id
    left join contacts on contacts.customer_id = customers.customer_id
    left join last_channel on last_channel.customer_id = customers.customer_id
    left join stated on stated.customer_id = customers.customer_id
    left join completeness on completeness.customer_id = customers.customer_id
)

select * from final
