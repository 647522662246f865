{#- stg_amocrm__custom_field_values, pre-hook: the stored values of every entity with a raw row in
    a batch the model has not read yet are deleted; the model's query inserts what its record
    holds now. -#}
{#- (entity_type, raw table) of the amoCRM entities whose records carry custom field values -#}
{% macro amocrm_field_entities() -%}
    {{ return([('lead', 'leads'), ('contact', 'contacts'), ('company', 'companies')]) }}
{%- endmacro %}

{% macro custom_field_values_scope() -%}
    {%- if is_incremental() %}
    delete from {{ this }} as stored
    using (
        {%- for entity_type, table in amocrm_field_entities() %}
        select account, '{{ entity_type }}' as entity_type, id as entity_id
        from ({{ raw_source('raw_amocrm', table, [('account', 'text'), ('id', 'bigint'), ('_loaded_at', 'timestamptz')]) }}) as raw_rows
        where _loaded_at >= {{ new_batches_since() }}
        {{ "union" if not loop.last }}
        {%- endfor %}
    ) as changed
    where stored.entity_type = changed.entity_type and stored.account = changed.account
        and stored.entity_id = changed.entity_id
    {%- else %}
    select 1
    {%- endif %}
{%- endmacro %}
