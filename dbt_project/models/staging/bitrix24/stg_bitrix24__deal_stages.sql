-- Deal stages from crm.status.list; SEMANTICS S = won, F = lost (older portals put it in EXTRA).
with source as (
    {{ raw_source('raw_bitrix24', 'deal_stages', [
        ('portal', 'text'), ('entity_id', 'text'), ('status_id', 'text'), ('updated_at', 'timestamptz'),
        ('record', 'jsonb'),
    ] + raw_meta_columns()) }}
),

final as (
    select distinct on (portal, status_id)
        portal,
        coalesce(entity_id, record ->> 'ENTITY_ID') as entity_id,
        coalesce(status_id, record ->> 'STATUS_ID') as status_id,
        record ->> 'NAME' as stage_name,
        cast(nullif(record ->> 'SORT', '') as integer) as stage_sort,
        case
            when upper(coalesce(record ->> 'SEMANTICS', record -> 'EXTRA' ->> 'SEMANTICS', '')) in ('S', 'SUCCESS') then 'won'
            when upper(coalesce(record ->> 'SEMANTICS', record -> 'EXTRA' ->> 'SEMANTICS', '')) in ('F', 'FAILURE') then 'lost'
            else 'open'
        end as stage_semantics
    from source
    where coalesce(entity_id, record ->> 'ENTITY_ID') like 'DEAL_STAGE%'
    order by portal, status_id, updated_at desc nulls last
)

select * from final
