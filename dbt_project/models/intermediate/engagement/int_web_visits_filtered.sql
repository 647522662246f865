{{
    config(
        materialized='incremental',
        incremental_strategy='replace_from',
        replace_from_column='visit_date',
        replaced_log={'table': 'ops.visit_clients_replaced', 'column': 'client_id'},
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['visit_date']}],
        pre_hook=["{{ new_batches_snapshot() }}"],
        post_hook=["{{ new_batches_consumed() }}"],
    )
}}
-- Metrica visits with a stable key — every loaded visit: the consumers cut at run_date, so
-- this table does not depend on the run's date (a re-run of an earlier day would otherwise
-- delete later visits that no later batch brings back). Large, so incremental: the loader replaces
-- Metrica dates whole (a lookback window every night), so a run finds the earliest visit date in
-- the load batches it has not read yet (macros/new_batches.sql) and replaces everything from that date on
-- (strategy replace_from, macros/incremental_cleanup.sql) — visits that settled late, changed
-- or vanished are corrected. The loaded-since filter reads the raw table, not the staging view:
-- through the view's row_number() it would sort every visit. `--full-refresh` rebuilds all.
with visits as (
    select * from {{ ref('stg_metrica__visits') }}
    {% if is_incremental() %}
    where visit_date >= (
            select min(visit_date)
            from {{ raw_or('raw_metrica', 'visits', ref('stg_metrica__visits')) }}
            where _loaded_at >= {{ new_batches_since() }}
        )
    {% endif %}
),

final as (
    select
        md5(counter_id || ':' || visit_id || ':' || visit_date) as visit_key,
        counter_id,
        visit_id,
        visit_date,
        client_id,
        visited_at,
        is_new_user,
        landing_path,
        start_url,
        page_views,
        visit_duration_seconds,
        is_bounce,
        goals_ids,
        purchase_revenue,
        device_category,
        traffic_source,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_term,
        _loaded_at
    from visits
)

select * from final
