-- amoCRM companies (B2B customers), typed.
with source as (
    {{ raw_source('raw_amocrm', 'companies', [
        ('account', 'text'), ('id', 'bigint'), ('updated_at', 'timestamptz'), ('record', 'jsonb'),
    ] + raw_meta_columns()) }}
),

deduplicated as (
    select
        *,
        row_number() over (partition by account, id order by updated_at desc nulls last, _loaded_at desc) as version_rank
    from source
),

final as (
    select
        account,
        id as company_id,
        'amocrm_company:' || account || ':' || id as company_key,
        nullif(trim(record ->> 'name'), '') as company_name,
        cast(nullif(record ->> 'responsible_user_id', '') as bigint) as responsible_user_id,
        {{ unix_to_timestamp("record ->> 'created_at'") }} as created_at,
        coalesce({{ unix_to_timestamp("record ->> 'updated_at'") }}, updated_at) as updated_at,
        coalesce(cast(record ->> 'is_deleted' as boolean), false) as is_deleted,
        _loaded_at
    from deduplicated
    where version_rank = 1
)

select * from final
