-- The customer database of seed 002 in one row per customer, in four blocks: semantic (who),
-- episodic (what happened), hypothetical (what outside sources say), value (interests, values,
-- and what the customer is worth). The only mart with personal data (name, email, phone,
-- birthday): publishing masks those columns for BI.
with customers as (select * from {{ ref('int_customers_unified') }}),
episodes as (select * from {{ ref('customer_episodes') }}),
jobs as (select * from {{ ref('customer_jobs') }}),
profitability as (select * from {{ ref('customer_profitability') }}),
churn as (select * from {{ ref('customer_churn') }}),
responses as (select * from {{ ref('int_survey_responses_linked') }}),

survey as (
    select
        customer_id,
        count(*) as survey_responses,
        (array_agg(nps order by submitted_at desc) filter (where nps is not null))[1] as latest_nps,
        (array_agg(satisfaction order by submitted_at desc) filter (where satisfaction is not null))[1]
            as latest_satisfaction,
        (array_agg(purpose order by submitted_at desc) filter (where purpose is not null))[1] as survey_purpose,
        (array_agg(interests order by submitted_at desc) filter (where interests is not null))[1] as interests,
        (array_agg(stated_values order by submitted_at desc) filter (where stated_values is not null))[1]
            as stated_values
    from responses
    group by customer_id
),

final as (
    select
        customers.customer_id,
        -- semantic
        customers.customer_type,
        customers.name,
        customers.email,
        customers.phone,
        customers.birthday,
        customers.city,
        customers.industry,
        customers.record_types as source_systems,
        customers.first_seen_at,
        episodes.manager_name,
        -- episodic
        episodes.purchases_6m,
        episodes.purchases_12m,
        episodes.last_purchase_date,
        episodes.contacts_6m,
        episodes.contacts_12m,
        episodes.last_contact_at,
        episodes.open_deals,
        episodes.open_deal_amount,
        episodes.complaints,
        episodes.stated_preferences,
        episodes.card_completeness,
        -- hypothetical
        coalesce(survey.survey_responses, 0) as survey_responses,
        survey.latest_nps,
        survey.latest_satisfaction,
        survey.survey_purpose,
        jobs.job_id,
        jobs.job_name,
        jobs.confidence as job_confidence,
        jobs.evidence_sources as job_evidence_sources,
        -- value
        survey.interests,
        survey.stated_values,
        profitability.revenue,
        profitability.profit,
        profitability.abc_class,
        churn.p_alive,
        churn.expected_purchases_90d,
        coalesce(churn.is_churned, false) as is_churned,
        churn.churn_reason_class,
        coalesce(churn.loyalty_type, 'none') as loyalty_type,
        coalesce(churn.retention_budget, 0) as retention_budget
    from customers
    left join episodes on episodes.customer_id = customers.customer_id
    left join jobs on jobs.customer_id = customers.customer_id
    left join profitability on profitability.customer_id = customers.customer_id
    left join churn on churn.customer_id = customers.customer_id
    left join survey on survey.customer_id = customers.customer_id
)

select * from final
