-- The job each customer hires us for (JTBD), with the confidence of the weighted vote and the
-- sources behind it. No evidence means 'unassigned': a known unknown, not a guess.
with customers as (select * from {{ ref('int_customers_unified') }}),
assigned as (select * from {{ ref('int_customer_jobs_assigned') }}),
jobs as (select * from {{ ref('jtbd_jobs') }}),

final as (
    select
        customers.customer_id,
        coalesce(assigned.job_id, 'unassigned') as job_id,
        coalesce(jobs.name, 'Unassigned') as job_name,
        coalesce(assigned.confidence, 0) as confidence,
        coalesce(assigned.job_score, 0) as job_score,
        coalesce(assigned.evidence_sources, '') as evidence_sources
    from customers
    left join assigned on assigned.customer_id = customers.customer_id
    left join jobs on jobs.job_id = assigned.job_id
)

select * from final
