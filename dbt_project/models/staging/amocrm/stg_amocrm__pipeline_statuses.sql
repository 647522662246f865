-- Pipelines with their statuses (from _embedded.statuses), one row per (pipeline, status).
with source as (
    {{ raw_source('raw_amocrm', 'pipelines', [
        ('account', 'text'), ('id', 'bigint'), ('updated_at', 'timestamptz'), ('record', 'jsonb'),
    ] + raw_meta_columns()) }}
),

final as (
    select distinct on (source.account, source.id, cast(status.value ->> 'id' as bigint))
        source.account,
        source.id as pipeline_id,
        source.record ->> 'name' as pipeline_name,
        cast(status.value ->> 'id' as bigint) as status_id,
        status.value ->> 'name' as status_name,
        cast(status.value ->> 'sort' as integer) as status_sort
    from source
    cross join lateral jsonb_array_elements({{ json_array("source.record -> '_embedded' -> 'statuses'") }}) as status (value)
    order by source.account, source.id, cast(status.value ->> 'id' as bigint), source.updated_at desc nulls last
)

select * from final
