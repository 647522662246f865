-- Marketing spend per day and campaign.
with source as (
    {{ raw_source('raw_crm_files', 'marketing_costs', [
        ('cost_date', 'date'), ('utm_source', 'text'), ('utm_medium', 'text'), ('utm_campaign', 'text'),
        ('cost', 'numeric(18,2)'), ('row_number', 'bigint'),
    ] + raw_meta_columns()) }}
),

final as (
    select
        cost_date,
        nullif(trim(utm_source), '') as utm_source,
        nullif(trim(utm_medium), '') as utm_medium,
        lower(nullif(trim(utm_campaign), '')) as utm_campaign,
        coalesce(cost, 0) as cost,
        row_number as source_row_number
    from source
)

select * from final
