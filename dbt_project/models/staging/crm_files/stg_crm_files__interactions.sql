-- Interactions (calls, meetings, complaints) from the CRM file export.
with source as (
    {{ raw_source('raw_crm_files', 'interactions', [
        ('interaction_id', 'text'), ('customer_id', 'text'), ('occurred_at', 'timestamptz'),
        ('channel', 'text'), ('kind', 'text'), ('manager', 'text'), ('note', 'text'), ('row_number', 'bigint'),
    ] + raw_meta_columns()) }}
),

final as (
    select distinct on (interaction_id)
        interaction_id,
        'crm_file_interaction:' || interaction_id as interaction_key,
        nullif(trim(customer_id), '') as customer_id,
        occurred_at,
        lower(trim(channel)) as channel,
        lower(trim(kind)) as kind,
        nullif(trim(manager), '') as manager,
        note,
        _loaded_at
    from source
    where nullif(trim(interaction_id), '') is not null
    order by interaction_id, _loaded_at desc, row_number desc
)

select * from final
