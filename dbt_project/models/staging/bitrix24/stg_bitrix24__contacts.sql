-- Bitrix24 contacts (people); their phones and emails are in stg_bitrix24__communications.
with source as (
    {{ raw_source('raw_bitrix24', 'contacts', [
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
        id as contact_id,
        'bitrix24_contact:' || portal || ':' || id as contact_key,
        nullif(trim(concat_ws(' ', record ->> 'NAME', record ->> 'SECOND_NAME', record ->> 'LAST_NAME')), '') as contact_name,
        cast(nullif(nullif(record ->> 'COMPANY_ID', ''), '0') as bigint) as company_id,
        cast({{ iso_to_timestamp("record ->> 'BIRTHDATE'") }} as date) as birthday,
        nullif(record ->> 'ADDRESS_CITY', '') as city,
        cast(nullif(record ->> 'ASSIGNED_BY_ID', '') as bigint) as assigned_by_id,
        {{ iso_to_timestamp("record ->> 'DATE_CREATE'") }} as created_at,
        coalesce(is_deleted, false) as is_deleted,
        _loaded_at
    from deduplicated
    where version_rank = 1
)

select * from final
