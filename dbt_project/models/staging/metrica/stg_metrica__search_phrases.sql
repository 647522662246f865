{{ config(materialized='view') }}
-- Reporting API rows: visits per (date, search phrase, landing page, UTM). Not per visitor:
-- phrases join to jobs through the landing page and UTM term, never to a person.
with source as (
    {{ raw_source('raw_metrica', 'search_phrases', [
        ('counter_id', 'bigint'), ('report_date', 'date'), ('search_phrase', 'text'),
        ('start_url', 'text'), ('utm_source', 'text'), ('utm_medium', 'text'),
        ('utm_campaign', 'text'), ('utm_term', 'text'), ('visits', 'numeric'), ('users', 'numeric'),
        ('sampled', 'boolean'), ('sample_share', 'numeric'),
    ] + raw_meta_columns()) }}
),

final as (
    select
        counter_id,
        report_date,
        lower(trim(search_phrase)) as search_phrase,
        nullif(start_url, '') as start_url,
        coalesce(substring(start_url from '^[a-z]+://[^/?#]+([^?#]*)'), '/') as landing_path,
        nullif(utm_source, '') as utm_source,
        nullif(utm_medium, '') as utm_medium,
        nullif(utm_campaign, '') as utm_campaign,
        nullif(utm_term, '') as utm_term,
        coalesce(visits, 0) as visits,
        coalesce(users, 0) as users,
        coalesce(sampled, false) as is_sampled,
        sample_share,
        _loaded_at
    from source
    where nullif(trim(search_phrase), '') is not null
)

select * from final
