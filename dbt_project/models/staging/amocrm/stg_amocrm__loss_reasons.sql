-- Loss reasons of lost leads.
with source as (
    {{ raw_source('raw_amocrm', 'loss_reasons', [
        ('account', 'text'), ('id', 'bigint'), ('updated_at', 'timestamptz'), ('record', 'jsonb'),
    ] + raw_meta_columns()) }}
),

final as (
    select distinct on (account, id)
        account,
        id as loss_reason_id,
        record ->> 'name' as loss_reason_name
    from source
    order by account, id, updated_at desc nulls last
)

select * from final
