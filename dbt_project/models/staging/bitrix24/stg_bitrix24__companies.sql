-- Bitrix24 companies (cafés and other B2B customers).
with source as (
    {{ raw_source('raw_bitrix24', 'companies', [
        ('portal', 'text'), ('id', 'bigint'), ('updated_at', 'timestamptz'), ('record', 'jsonb'),
        ('is_deleted', 'boolean'),
    ] + raw_meta_columns()) }}
),

deduplicated as (
    select
        *,
        row_number() over (partition by portal, id order by updated_at desc nulls last, _loaded_at desc) as version_rank
    from source
),

final as (
    select
        portal,
        id as company_id,
        'bitrix24_company:' || portal || ':' || id as company_key,
        nullif(trim(record ->> 'TITLE'), '') as company_name,
        nullif(record ->> 'INDUSTRY', '') as industry,
        nullif(record ->> 'ADDRESS_CITY', '') as city,
        cast(nullif(record ->> 'ASSIGNED_BY_ID', '') as bigint) as assigned_by_id,
        {{ iso_to_timestamp("record ->> 'DATE_CREATE'") }} as created_at,
        coalesce(is_deleted, false) as is_deleted,
        _loaded_at
    from deduplicated
    where version_rank = 1
)

select * from final
