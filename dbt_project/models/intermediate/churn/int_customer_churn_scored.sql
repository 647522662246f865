{{ config(tags=['churn_scored']) }}
-- BG/NBD per customer from the fitted parameters, in SQL so it scales with the warehouse:
--   P(alive) = 1 / (1 + [x>0] · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x))
--   E[purchases in the next t] = (a+b+x−1)/(a−1) · (1 − ((α+T)/(α+T+t))^(r+x)
--                                 · ₂F₁(r+x, b+x; a+b+x−1; t/(α+T+t))) / (1 + [x>0]·a/(b+x−1)·((α+T)/(α+t_x))^(r+x))
--   P(no purchase in the next h) = P(dead) + P(alive) · ((α+T)/(α+T+h))^(r+x)
-- with t = horizon_days and h = churn_horizon_days (seed model_parameters) in the model's time unit. With var
-- churn_model_variant = 'mbgnbd' (modified BG/NBD) the odds are a/(b+x)·((α+T)/(α+t_x))^(r+x) for
-- every customer, one-time buyers included, and ₂F₁'s b+x, a+b+x−1 become b+x+1, a+b+x.
{%- set modified = var('churn_model_variant', 'bgnbd') == 'mbgnbd' %}
{%- set shift = 1 if modified else 0 %}
with summary as (select * from {{ ref('int_customer_purchase_summary') }}),
params as (select * from {{ ref('int_churn_parameters_selected') }}),
settings as (
    select
        max(case when parameter = 'horizon_days' then value end) as horizon_days,
        max(case when parameter = 'churn_horizon_days' then value end) as churn_horizon_days
    from {{ ref('model_parameters') }}
),

inputs as (
    select
        summary.customer_id,
        cast(summary.x as double precision) as x,
        cast(summary.t_x as double precision) as t_x,
        cast(summary.t_cal as double precision) as t_cal,
        params.r,
        params.alpha,
        params.a,
        params.b,
        cast(settings.horizon_days as double precision) / {{ churn_unit_days() }} as horizon,
        cast(settings.churn_horizon_days as double precision) / {{ churn_unit_days() }} as churn_horizon
    from summary
    cross join params
    cross join settings
),

odds as (
    select
        inputs.*,
        {%- if modified %}
        a / (b + x) * power((alpha + t_cal) / (alpha + t_x), r + x) as dead_odds
        {%- else %}
        case
            when x > 0 then a / (b + x - 1) * power((alpha + t_cal) / (alpha + t_x), r + x)
            else 0
        end as dead_odds
        {%- endif %}
    from inputs
),

final as (
    select
        customer_id,
        round(cast(1 / (1 + dead_odds) as numeric), 6) as p_alive,
        round(cast(
            (a + b + x - 1 + {{ shift }}) / (a - 1)
            * (1 - power((alpha + t_cal) / (alpha + t_cal + horizon), r + x)
                * udf.cw_hyp2f1(r + x, b + x + {{ shift }}, a + b + x - 1 + {{ shift }},
                                horizon / (alpha + t_cal + horizon)))
            / (1 + dead_odds)
            as numeric), 6) as expected_purchases_horizon,
        round(cast(
            (dead_odds + power((alpha + t_cal) / (alpha + t_cal + churn_horizon), r + x)) / (1 + dead_odds)
            as numeric), 6) as churn_probability
    from odds
)

select * from final
