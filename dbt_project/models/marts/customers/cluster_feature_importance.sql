select * from {{ source('analytics', 'cluster_feature_importance') }}
