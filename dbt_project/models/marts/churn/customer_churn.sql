{{ config(tags=['churn_scored']) }}
-- Churn per customer who bought: the BG/NBD summary and P(alive), expected purchases over the
-- horizon, RFM scores, the rule-based churn flag (silent longer than k × typical inter-purchase
-- time), the reason class, the loyalty type and the retention budget.
with summary as (select * from {{ ref('int_customer_purchase_summary') }}),
scored as (select * from {{ ref('int_customer_churn_scored') }}),
reasons as (select * from {{ ref('int_churn_reasons_classified') }}),
jobs as (select * from {{ ref('customer_jobs') }}),
responses as (select * from {{ ref('int_survey_responses_linked') }}),
interactions as (select * from {{ ref('int_customer_interactions_resolved') }}),
thresholds as (select * from {{ ref('churn_thresholds') }}),
policy as (select * from {{ ref('retention_policy') }}),
parameters as (select * from {{ ref('model_parameters') }}),

settings as (
    select
        max(case when parameter = 'behavioural_min_repeat' then value end) as behavioural_min_repeat,
        max(case when parameter = 'emotional_min_nps' then value end) as emotional_min_nps,
        max(case when parameter = 'emotional_min_satisfaction' then value end) as emotional_min_satisfaction
    from parameters
),

sentiment as (
    select
        customer_id,
        (array_agg(nps order by submitted_at desc) filter (where nps is not null))[1] as latest_nps,
        (array_agg(satisfaction order by submitted_at desc) filter (where satisfaction is not null))[1]
            as latest_satisfaction
    from responses
    group by customer_id
),

-- a purchase after a complaint: the customer stayed through a bad episode
stayed_through as (
    select distinct interactions.customer_id
    from interactions
    inner join summary
        on summary.customer_id = interactions.customer_id
        and summary.last_purchase_date > interactions.occurred_date
    where interactions.is_complaint
),

job_medians as (
    select
        jobs.job_id,
        percentile_cont(0.5) within group (order by summary.mean_interpurchase_days) as median_interpurchase_days
    from summary
    inner join jobs on jobs.customer_id = summary.customer_id
    where summary.mean_interpurchase_days is not null
    group by jobs.job_id
),

rfm as (
    select
        customer_id,
        ntile(5) over (order by days_since_last_purchase desc, customer_id) as recency_score,
        ntile(5) over (order by purchase_days, customer_id) as frequency_score,
        ntile(5) over (order by revenue, customer_id) as monetary_score
    from summary
),

combined as (
    select
        summary.*,
        jobs.job_id,
        scored.p_alive,
        scored.expected_purchases_horizon,
        scored.churn_probability,
        rfm.recency_score,
        rfm.frequency_score,
        rfm.monetary_score,
        coalesce(job_threshold.k_multiplier, default_threshold.k_multiplier) as k_multiplier,
        coalesce(job_threshold.min_silence_days, default_threshold.min_silence_days) as min_silence_days,
        coalesce(
            summary.mean_interpurchase_days,
            job_medians.median_interpurchase_days,
            job_threshold.fallback_interpurchase_days,
            default_threshold.fallback_interpurchase_days
        ) as typical_interpurchase_days,
        reasons.reason_class,
        reasons.reason_source,
        sentiment.latest_nps,
        sentiment.latest_satisfaction,
        stayed_through.customer_id is not null as stayed_through_complaint
    from summary
    left join scored on scored.customer_id = summary.customer_id
    left join rfm on rfm.customer_id = summary.customer_id
    left join jobs on jobs.customer_id = summary.customer_id
    left join job_medians on job_medians.job_id = jobs.job_id
    left join thresholds as job_threshold on job_threshold.job_id = jobs.job_id
    left join thresholds as default_threshold on default_threshold.job_id = 'default'
    left join reasons on reasons.customer_id = summary.customer_id
    left join sentiment on sentiment.customer_id = summary.customer_id
    left join stayed_through on stayed_through.customer_id = summary.customer_id
),

flagged as (
    select
        combined.*,
        greatest(k_multiplier * typical_interpurchase_days, min_silence_days) as silence_threshold_days,
        days_since_last_purchase > greatest(k_multiplier * typical_interpurchase_days, min_silence_days) as is_churned
    from combined
),

final as (
    select
        flagged.customer_id,
        flagged.first_purchase_date,
        flagged.last_purchase_date,
        flagged.x,
        flagged.t_x,
        flagged.t_cal as t,
        '{{ var("churn_time_unit") }}' as time_unit,
        flagged.days_since_last_purchase,
        flagged.recency_score,
        flagged.frequency_score,
        flagged.monetary_score,
        cast(flagged.recency_score as text) || cast(flagged.frequency_score as text)
            || cast(flagged.monetary_score as text) as rfm_segment,
        flagged.p_alive,
        flagged.expected_purchases_horizon as expected_purchases_90d,
        flagged.churn_probability,
        round(cast(flagged.typical_interpurchase_days as numeric), 2) as typical_interpurchase_days,
        round(cast(flagged.silence_threshold_days as numeric), 2) as silence_threshold_days,
        flagged.is_churned,
        case
            when flagged.reason_class is not null then flagged.reason_class
            when flagged.is_churned then 'unknown'
        end as churn_reason_class,
        flagged.reason_source as churn_reason_source,
        case
            when flagged.latest_nps >= settings.emotional_min_nps and flagged.x >= 1
                and flagged.stayed_through_complaint then 'personal'
            when flagged.latest_nps >= settings.emotional_min_nps
                or flagged.latest_satisfaction >= settings.emotional_min_satisfaction then 'emotional'
            when flagged.x >= settings.behavioural_min_repeat then 'behavioural'
            else 'none'
        end as loyalty_type,
        round(
            greatest(flagged.expected_purchases_horizon * flagged.gross_profit_per_purchase, 0)
            * flagged.p_alive
            * coalesce(policy.budget_share, 0),
            2
        ) as retention_budget
    from flagged
    cross join settings
    left join policy
        on policy.reason_class = coalesce(flagged.reason_class, case when flagged.is_churned then 'unknown' else 'none' end)
)

select * from final
