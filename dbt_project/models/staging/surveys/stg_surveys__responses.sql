-- Survey responses from every channel with answers already mapped to meanings by the loader.
with source as (
    {{ raw_source('raw_surveys', 'responses', [
        ('channel', 'text'), ('form_id', 'text'), ('response_id', 'text'), ('submitted_at', 'timestamptz'),
        ('respondent_email', 'text'), ('respondent_phone', 'text'), ('respondent_client_id', 'text'),
        ('answers', 'jsonb'),
    ] + raw_meta_columns()) }}
),

final as (
    select distinct on (channel, form_id, response_id)
        channel,
        form_id,
        response_id,
        'survey_response:' || channel || ':' || form_id || ':' || response_id as response_key,
        submitted_at,
        {{ normalise_email('respondent_email') }} as email,
        {{ normalise_phone('respondent_phone') }} as phone,
        nullif(nullif(trim(respondent_client_id), ''), '0') as client_id,
        nullif(trim(answers ->> 'purpose'), '') as purpose,
        {{ to_numeric("answers ->> 'nps'") }} as nps,
        {{ to_numeric("answers ->> 'satisfaction'") }} as satisfaction,
        nullif(trim(answers ->> 'exit_reason'), '') as exit_reason,
        nullif(trim(answers ->> 'interests'), '') as interests,
        nullif(trim(answers ->> 'values'), '') as stated_values,
        answers,
        _loaded_at
    from source
    order by channel, form_id, response_id, _loaded_at desc
)

select * from final
