{{ config(materialized='view') }}
-- One row per Metrica page view (hit), typed. Optional: many counters export visits only.
with source as (
    {{ raw_source('raw_metrica', 'hits', [
        ('counter_id', 'bigint'), ('hit_date', 'date'), ('counter_timezone', 'text'),
        ('watch_id', 'text'), ('client_id', 'text'), ('date_time', 'text'), ('url', 'text'),
        ('title', 'text'), ('is_page_view', 'text'),
    ] + raw_meta_columns()) }}
),

final as (
    select
        counter_id,
        watch_id,
        hit_date,
        nullif(nullif(client_id, ''), '0') as client_id,
        cast(date_time as timestamp)
            at time zone coalesce(nullif(counter_timezone, ''), '{{ var("business_timezone") }}') as hit_at,
        nullif(url, '') as url,
        coalesce(substring(url from '^[a-z]+://[^/?#]+([^?#]*)'), '/') as url_path,
        _loaded_at
    from source
    where watch_id is not null and watch_id <> ''
)

select * from final
