{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        indexes=[{'columns': ['customer_id']}],
        pre_hook=["{{ customer_scope() }}"],
        post_hook=["{{ customer_scope_read() }}"],
    )
}}
-- Everything that may say which job a customer hires us for, one row per distinct signal:
-- CRM (deal purpose, products bought, managers' notes), Metrica (landing pages, UTM terms of
-- the customer's visits), surveys ("what did you buy it for"). A repeated signal counts once,
-- so a frequent visitor does not outvote a stated purpose.
--
-- Incremental by customer: a night recomputes the customers int_customers_changed logged since
-- this model last read it (macros/customer_scope.sql); every customer's signals again took
-- 14–19 s of a new day at medium scale (bench of session 11).
-- depends_on: {{ ref('int_customers_changed') }}
with orders as (select * from {{ ref('int_orders_unified') }} where {{ in_customer_scope('customer_id') }}),
interactions as (
    select * from {{ ref('int_customer_interactions_resolved') }} where {{ in_customer_scope('customer_id') }}
),
visits as (select * from {{ ref('int_web_visits_filtered') }} where visit_date <= {{ run_date() }}),
client_nodes as (
    select * from {{ ref('int_customer_nodes_resolved') }}
    where node_type = 'metrica_client_id' and {{ in_customer_scope('customer_id') }}
),
responses as (select * from {{ ref('int_survey_responses_linked') }} where {{ in_customer_scope('customer_id') }}),

-- each input is read once (an input named twice would be materialised, and the planner's guess
-- of the joins over it was off by 200×): a row giving two signals unpivots them in place
signals as (
    select orders.customer_id, 'crm' as source, signal.field, signal.value, signal.observed_at
    from orders
    cross join lateral (values
        ('deal_purpose', orders.purpose, orders.created_at),
        ('product', case when orders.is_won then orders.product end, orders.closed_at)
    ) as signal (field, value, observed_at)
    where signal.value is not null
    union all
    select customer_id, 'crm' as source, 'note' as field, body_text as value, occurred_at as observed_at
    from interactions
    where body_text is not null and body_text <> '' and activity in ('note', 'call', 'meeting', 'task', 'email')
    union all
    select client_nodes.customer_id, 'metrica' as source, signal.field, signal.value, visits.visited_at as observed_at
    from visits
    inner join client_nodes on client_nodes.source_key = visits.client_id
    cross join lateral (values ('landing_page', visits.landing_path), ('utm_term', visits.utm_term))
        as signal (field, value)
    where signal.field = 'landing_page' or signal.value is not null
    union all
    select customer_id, 'surveys' as source, 'survey_purpose' as field, purpose as value, submitted_at as observed_at
    from responses
    where purpose is not null
),

final as (
    select
        customer_id,
        source,
        field,
        value,
        min(observed_at) as first_observed_at,
        count(*) as occurrences
    from signals
    group by customer_id, source, field, value
)

select * from final
