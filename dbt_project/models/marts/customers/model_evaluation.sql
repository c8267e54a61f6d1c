{#- Every model's quality, every refresh, in one place: the CLTV backtest and truth comparison,
    and the clustering's K, silhouette, stability and agreement with the simulator's personas. -#}
with cltv as (
    select
        as_of_date,
        'cltv' as model_family,
        evaluation,
        metric,
        model,
        value
    from {{ source('analytics', 'cltv_evaluation') }}
),

clusters as (
    select
        as_of_date,
        'clusters' as model_family,
        'clustering' as evaluation,
        metric,
        'kmeans' as model,
        value
    from {{ source('analytics', 'cluster_evaluation') }}
)

select * from cltv
union all
select * from clusters
