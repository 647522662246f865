{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        indexes=[{'columns': ['client_id'], 'unique': True}, {'columns': ['visit_date']}],
        pre_hook=["{{ new_batches_snapshot(read_by='int_web_visits_filtered') }}",
                  "{{ client_first_visits_scope() }}"],
        post_hook=["{{ new_batches_consumed() }}"],
    )
}}
-- Each Metrica ClientID's first visit (earliest visited_at, then visit_key) among all loaded
-- visits. Like int_web_visits_filtered it does not depend on the run date: a consumer keeps the
-- rows with visit_date <= run_date, which is the first visit up to that day (a visit's date is its
-- visited_at's day, so a client whose first visit is later has no visit up to it).
--
-- Incremental: int_web_visits_filtered replaces every visit from the earliest visit date of the
-- batches it reads on (strategy replace_from). A client whose first visit lies before that date
-- keeps it (no earlier visit changed); the pre-hook (macros/client_first_visits_scope.sql) deletes
-- the others, and this query finds their first visit — and new clients' — among the visits from
-- that date on. Acquisition attribution sorted every visit each night before (12 s at medium
-- scale, bench of session 9).
-- depends_on: {{ ref('stg_metrica__visits') }}, {{ source('raw_metrica', 'visits') }}
{{ require_stored_columns(['client_id', 'visit_date', 'visited_at', 'visit_key']) }}
with visits as (
    select visits.client_id, visits.visit_date, visits.visited_at, visits.visit_key, visits.utm_campaign
    from {{ ref('int_web_visits_filtered') }} as visits
    where visits.client_id is not null
    {%- if is_incremental() %}
        and visits.visit_date >= (select from_date from pg_temp.client_first_visits_scope)
        and not exists (select from {{ this }} as stored where stored.client_id = visits.client_id)
    {%- endif %}
)

select distinct on (client_id) client_id, visit_date, visited_at, visit_key, utm_campaign
from visits
order by client_id, visited_at, visit_key
