-- Per job (and 'unassigned'): how many customers, what they bring, how they churn, what they
-- search for, where they land and come from, and how often their deals convert — what
-- positioning and sales scripts need.
with jobs_seed as (select * from {{ ref('jtbd_jobs') }}),
customer_jobs as (select * from {{ ref('customer_jobs') }}),
profitability as (select * from {{ ref('customer_profitability') }}),
churn as (select * from {{ ref('customer_churn') }}),
orders as (select * from {{ ref('int_orders_unified') }}),
visits as (select * from {{ ref('int_web_visits_filtered') }} where visit_date <= {{ run_date() }}),
client_nodes as (select * from {{ ref('int_customer_nodes_resolved') }} where node_type = 'metrica_client_id'),
phrases as (select * from {{ ref('stg_metrica__search_phrases') }}),
rules as (select * from {{ ref('jtbd_evidence_rules') }} where source = 'metrica'),

all_jobs as (
    select job_id, name as job_name from jobs_seed
    union all
    select 'unassigned' as job_id, 'Unassigned' as job_name
),

value as (
    select
        customer_jobs.job_id,
        count(*) as customers,
        sum(profitability.revenue) as revenue,
        sum(profitability.profit) as profit,
        count(churn.customer_id) as buyers,
        count(*) filter (where churn.is_churned) as churned_buyers,
        round(avg(churn.p_alive), 4) as avg_p_alive,
        coalesce(sum(churn.retention_budget), 0) as retention_budget
    from customer_jobs
    inner join profitability on profitability.customer_id = customer_jobs.customer_id
    left join churn on churn.customer_id = customer_jobs.customer_id
    group by customer_jobs.job_id
),

conversion as (
    select
        customer_jobs.job_id,
        count(*) filter (where orders.status = 'won') as won_deals,
        count(*) filter (where orders.status in ('won', 'lost')) as closed_deals
    from orders
    inner join customer_jobs on customer_jobs.customer_id = orders.customer_id
    group by customer_jobs.job_id
),

customer_visits as (
    select customer_jobs.job_id, visits.landing_path, coalesce(visits.utm_source, visits.traffic_source) as channel
    from visits
    inner join client_nodes on client_nodes.source_key = visits.client_id
    inner join customer_jobs on customer_jobs.customer_id = client_nodes.customer_id
),

landing_ranked as materialized (
    select job_id, landing_path, count(*) as visits,
        row_number() over (partition by job_id order by count(*) desc, landing_path) as position
    from customer_visits
    group by job_id, landing_path
),

channel_ranked as materialized (
    select job_id, channel, count(*) as visits,
        row_number() over (partition by job_id order by count(*) desc, channel) as position
    from customer_visits
    where channel is not null
    group by job_id, channel
),

-- (the *_ranked CTEs are read by a correlated subquery per job: materialized, they are computed
-- once instead of once per job)

-- search phrases are not per visitor: a phrase belongs to a job when its landing page, UTM term
-- or the phrase itself matches the job's Metrica rules
-- (the rules see only phrase, landing page and UTM term: match each distinct combination once,
-- not once per report day)
phrase_combinations as (
    select search_phrase, landing_path, utm_term, sum(visits) as visits
    from phrases
    group by search_phrase, landing_path, utm_term
),

phrase_jobs as (
    select phrases.search_phrase, rules.job_id, sum(phrases.visits) as visits
    from phrase_combinations as phrases
    inner join rules
        on (rules.field = 'landing_page' and phrases.landing_path ~* rules.pattern)
        or (rules.field = 'utm_term' and phrases.utm_term ~* rules.pattern)
        or (rules.field = 'search_phrase' and phrases.search_phrase ~* rules.pattern)
    group by phrases.search_phrase, rules.job_id
),

phrase_ranked as materialized (
    select job_id, search_phrase, visits,
        row_number() over (partition by job_id order by visits desc, search_phrase) as position
    from phrase_jobs
),

final as (
    select
        all_jobs.job_id,
        all_jobs.job_name,
        coalesce(value.customers, 0) as customers,
        coalesce(value.revenue, 0) as revenue,
        coalesce(value.profit, 0) as profit,
        coalesce(value.buyers, 0) as buyers,
        round(cast(value.churned_buyers as numeric) / nullif(value.buyers, 0), 4) as churn_rate,
        value.avg_p_alive,
        coalesce(value.retention_budget, 0) as retention_budget,
        (select string_agg(search_phrase, '; ' order by position) from phrase_ranked
            where phrase_ranked.job_id = all_jobs.job_id and position <= 5) as top_search_phrases,
        (select string_agg(landing_path, '; ' order by position) from landing_ranked
            where landing_ranked.job_id = all_jobs.job_id and position <= 5) as top_landing_pages,
        (select string_agg(channel, '; ' order by position) from channel_ranked
            where channel_ranked.job_id = all_jobs.job_id and position <= 5) as top_channels,
        coalesce(conversion.won_deals, 0) as won_deals,
        coalesce(conversion.closed_deals, 0) as closed_deals,
        round(cast(conversion.won_deals as numeric) / nullif(conversion.closed_deals, 0), 4) as deal_conversion_rate
    from all_jobs
    left join value on value.job_id = all_jobs.job_id
    left join conversion on conversion.job_id = all_jobs.job_id
)

select * from final
