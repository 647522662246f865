-- The churn reason class of each customer with evidence: the evidence matching a rule of
-- churn_reason_rules with the best (lowest) priority wins, the most recent one among equals.
-- Customers without matching evidence are not here (→ 'unknown' in the mart).
with evidence as (select * from {{ ref('int_churn_evidence_collected') }}),
rules as (select * from {{ ref('churn_reason_rules') }}),

matched as (
    select
        evidence.customer_id,
        rules.reason_class,
        evidence.evidence_source,
        evidence.evidence_text,
        evidence.observed_at,
        row_number() over (
            partition by evidence.customer_id
            order by rules.priority, evidence.observed_at desc, evidence.evidence_text
        ) as match_rank
    from evidence
    inner join rules
        on rules.evidence_source = evidence.evidence_source
        and evidence.evidence_text ~* rules.pattern
),

final as (
    select
        customer_id,
        reason_class,
        evidence_source as reason_source,
        evidence_text as reason_evidence,
        observed_at as reason_observed_at
    from matched
    where match_rank = 1
)

select * from final
