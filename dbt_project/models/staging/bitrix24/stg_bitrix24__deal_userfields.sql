-- Deal user-field definitions (UF_CRM_*), for documentation and drift checks.
with source as (
    {{ raw_source('raw_bitrix24', 'deal_userfields', [
        ('portal', 'text'), ('id', 'bigint'), ('updated_at', 'timestamptz'), ('record', 'jsonb'),
    ] + raw_meta_columns()) }}
),

final as (
    select
        portal,
        id as userfield_id,
        record ->> 'FIELD_NAME' as field_name,
        record ->> 'USER_TYPE_ID' as field_type
    from source
)

select * from final
