select * from {{ source('analytics', 'cluster_k_curve') }}
