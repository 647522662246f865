-- amoCRM users (managers).
with source as (
    {{ raw_source('raw_amocrm', 'users', [
        ('account', 'text'), ('id', 'bigint'), ('updated_at', 'timestamptz'), ('record', 'jsonb'),
    ] + raw_meta_columns()) }}
),

final as (
    select distinct on (account, id)
        account,
        id as user_id,
        'amocrm:' || account || ':' || id as manager_key,
        coalesce(nullif(record ->> 'name', ''), 'amoCRM user ' || id) as user_name
    from source
    order by account, id, updated_at desc nulls last
)

select * from final
