-- Per customer, what the episodic memory of the company says: purchases and contacts in the
-- last 6 and 12 months, the last contact, open deals (planned work), complaints, stated
-- preferences, and how complete the business contact card is.
with customers as (select * from {{ ref('int_customers_unified') }}),
orders as (select * from {{ ref('int_orders_unified') }}),
-- read twice (contacts, last_channel): not materialized, or PostgreSQL would copy every contact first
interactions as not materialized (select * from {{ ref('int_customer_interactions_resolved') }}),
responses as (select * from {{ ref('int_survey_responses_linked') }}),
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

card_long as (
    select customer_id, 'name' as field, has_name as is_filled from card
    union all
    select customer_id, 'phone' as field, has_phone as is_filled from card
    union all
    select customer_id, 'email' as field, has_email as is_filled from card
    union all
    select customer_id, 'city' as field, has_city as is_filled from card
    union all
    select customer_id, 'birthday_or_industry' as field, has_birthday_or_industry as is_filled from card
    union all
    select customer_id, 'stated_purpose' as field, has_stated_purpose as is_filled from card
    union all
    select customer_id, 'manager' as field, has_manager as is_filled from card
),

completeness as (
    select
        card_long.customer_id,
        round(sum(case when card_long.is_filled then card_fields.weight else 0 end) / sum(card_fields.weight), 4)
            as card_completeness,
        string_agg(card_long.field, ',' order by card_long.field) filter (where not card_long.is_filled)
            as card_missing_fields
    from card_long
    inner join card_fields on card_fields.field = card_long.field
    group by card_long.customer_id
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
