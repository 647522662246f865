{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='visit_date',
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['client_id']}, {'columns': ['visit_date']}],
    )
}}
-- Metrica visits with a stable key, up to run_date. Large, so incremental: a run re-reads every
-- visit date that was (re)loaded since the previous run (minus a lookback) and replaces those
-- dates whole — the loader replaces Metrica dates whole too, so visits that settled late or
-- vanished are corrected. `dbt build --full-refresh` rebuilds everything.
with visits as (
    select * from {{ ref('stg_metrica__visits') }}
    where visit_date <= {{ run_date() }}
    {% if is_incremental() %}
        and visit_date in (
            select distinct visit_date
            from {{ ref('stg_metrica__visits') }}
            where _loaded_at > (
                select coalesce(max(_loaded_at), cast('1900-01-01' as timestamptz))
                    - interval '{{ var("incremental_lookback_days") }} days'
                from {{ this }}
            )
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
