{{ config(materialized='view') }}
-- One row per Metrica visit, typed. dateTime is wall-clock time in the counter's zone
-- (recorded by the loader in counter_timezone), made an explicit instant here.
with source as (
    {{ raw_source('raw_metrica', 'visits', [
        ('counter_id', 'bigint'), ('visit_date', 'date'), ('counter_timezone', 'text'),
        ('visit_id', 'text'), ('client_id', 'text'), ('date_time', 'text'), ('is_new_user', 'text'),
        ('start_url', 'text'), ('end_url', 'text'), ('page_views', 'text'), ('visit_duration', 'text'),
        ('bounce', 'text'), ('goals_id', 'text'), ('purchase_revenue', 'text'), ('region_city', 'text'),
        ('device_category', 'text'), ('referer', 'text'), ('lastsign_traffic_source', 'text'),
        ('lastsign_utm_source', 'text'), ('lastsign_utm_medium', 'text'),
        ('lastsign_utm_campaign', 'text'), ('lastsign_utm_term', 'text'),
    ] + raw_meta_columns()) }}
),

deduplicated as (
    select
        *,
        row_number() over (
            partition by counter_id, visit_id, visit_date order by _loaded_at desc
        ) as version_rank
    from source
    where visit_id is not null and visit_id <> ''
),

final as (
    select
        counter_id,
        visit_id,
        visit_date,
        nullif(nullif(client_id, ''), '0') as client_id,
        cast(date_time as timestamp)
            at time zone coalesce(nullif(counter_timezone, ''), '{{ var("business_timezone") }}') as visited_at,
        is_new_user = '1' as is_new_user,
        nullif(start_url, '') as start_url,
        coalesce(substring(start_url from '^[a-z]+://[^/?#]+([^?#]*)'), '/') as landing_path,
        nullif(end_url, '') as end_url,
        cast({{ to_numeric('page_views') }} as integer) as page_views,
        cast({{ to_numeric('visit_duration') }} as integer) as visit_duration_seconds,
        bounce = '1' as is_bounce,
        nullif(nullif(goals_id, ''), '[]') as goals_ids,
        {{ to_numeric('purchase_revenue') }} as purchase_revenue,
        nullif(region_city, '') as region_city,
        case device_category
            when '1' then 'desktop' when '2' then 'phone' when '3' then 'tablet' when '4' then 'tv'
        end as device_category,
        nullif(lastsign_traffic_source, '') as traffic_source,
        nullif(lastsign_utm_source, '') as utm_source,
        nullif(lastsign_utm_medium, '') as utm_medium,
        nullif(lastsign_utm_campaign, '') as utm_campaign,
        nullif(lastsign_utm_term, '') as utm_term,
        _loaded_at
    from deduplicated
    where version_rank = 1
)

select * from final
