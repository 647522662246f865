-- amoCRM contacts (people), typed; phones/emails/birthday are in stg_amocrm__custom_field_values.
with source as (
    {{ raw_source('raw_amocrm', 'contacts', [
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
        id as contact_id,
        'amocrm_contact:' || account || ':' || id as contact_key,
        nullif(trim(coalesce(record ->> 'name',
            concat_ws(' ', record ->> 'first_name', record ->> 'last_name'))), '') as contact_name,
        cast(nullif(record ->> 'responsible_user_id', '') as bigint) as responsible_user_id,
        {{ unix_to_timestamp("record ->> 'created_at'") }} as created_at,
        coalesce({{ unix_to_timestamp("record ->> 'updated_at'") }}, updated_at) as updated_at,
        coalesce(cast(record ->> 'is_deleted' as boolean), false) as is_deleted,
        {{ json_array("record -> '_embedded' -> 'companies'") }} as companies,
        _loaded_at
    from deduplicated
    where version_rank = 1
)

select * from final
