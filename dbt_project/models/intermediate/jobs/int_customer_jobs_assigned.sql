-- Weighted vote of the evidence: score(customer, job) = Σ rule weight × source weight over the
-- customer's signals that match the job's rules. The job with the highest score wins (ties go
-- to the job with more distinct sources, then alphabetically); confidence is its share of the
-- customer's total score. Customers without matching evidence are not here (→ 'unassigned').
--
-- Incremental by customer, as its evidence is (macros/customer_scope.sql); a change of the rules
-- or the weights votes every customer again.
-- depends_on: {{ ref('int_customers_changed') }}, {{ ref('int_customer_nodes_resolved') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        indexes=[{'columns': ['customer_id'], 'unique': True}],
        pre_hook=["{{ customer_scope(lookups=[ref('jtbd_evidence_rules'), ref('source_weights')]) }}"],
        post_hook=["{{ customer_scope_read(lookups=[ref('jtbd_evidence_rules'), ref('source_weights')]) }}"],
    )
}}
with evidence as (
    select * from {{ ref('int_job_evidence_collected') }} where {{ in_customer_scope('customer_id') }}
),
rules as (select * from {{ ref('jtbd_evidence_rules') }}),
source_weights as (select * from {{ ref('source_weights') }}),

-- the rules' regexes run once per distinct signal value (hundreds), not once per customer's
-- signal (millions at medium scale): products, pages and purposes repeat across customers
value_votes as (
    select
        signal_values.source,
        signal_values.field,
        signal_values.value,
        rules.job_id,
        max(rules.weight * source_weights.weight) as vote
    from (select distinct source, field, value from evidence) as signal_values
    inner join rules
        on rules.source = signal_values.source
        and rules.field = signal_values.field
        and signal_values.value ~* rules.pattern
    inner join source_weights on source_weights.source = signal_values.source
    group by signal_values.source, signal_values.field, signal_values.value, rules.job_id
),

matched as (
    select
        evidence.customer_id,
        value_votes.job_id,
        evidence.source,
        value_votes.vote
    from evidence
    inner join value_votes
        on value_votes.source = evidence.source
        and value_votes.field = evidence.field
        and value_votes.value = evidence.value
),

scored as (
    select
        customer_id,
        job_id,
        sum(vote) as score,
        count(distinct source) as source_count,
        string_agg(distinct source, ',' order by source) as evidence_sources
    from matched
    group by customer_id, job_id
),

ranked as (
    select
        scored.*,
        sum(score) over (partition by customer_id) as total_score,
        row_number() over (partition by customer_id order by score desc, source_count desc, job_id) as job_rank
    from scored
),

final as (
    select
        customer_id,
        job_id,
        round(score, 4) as job_score,
        round(score / nullif(total_score, 0), 4) as confidence,
        evidence_sources
    from ranked
    where job_rank = 1
)

select * from final
