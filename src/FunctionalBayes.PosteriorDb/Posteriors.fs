/// The catalogue: every posterior written with the library, by posteriordb's name.
[<RequireQualifiedAccess>]
module FunctionalBayes.PosteriorDb.Posteriors

let private none : Map<string, float[][]> -> Map<string, float[][]> = fun _ -> Map.empty

let private posterior name m =
    { Name = name; Model = m; Derived = none; Settings = PosteriorSettings.Default }

/// eight_schools-eight_schools_noncentered (posteriordb ran it with adapt_delta = 0.95).
let eightSchoolsNoncentered =
    { posterior "eight_schools-eight_schools_noncentered" Models.eightSchoolsNoncentered with
        Derived = Models.eightSchoolsTheta
        Settings = { PosteriorSettings.Default with TargetAccept = 0.95 } }

/// arK-arK.
let arK = posterior "arK-arK" Models.arK

/// earnings-logearn_height (a dense metric: intercept and slope are strongly correlated).
let logearnHeight =
    { posterior "earnings-logearn_height" Models.logearnHeight with Settings = { PosteriorSettings.Default with DenseMetric = true } }

/// kidiq-kidscore_momiq (a dense metric, as logearn_height).
let kidscoreMomiq =
    { posterior "kidiq-kidscore_momiq" Models.kidscoreMomiq with Settings = { PosteriorSettings.Default with DenseMetric = true } }

/// sblrc-blr.
let blr = posterior "sblrc-blr" Models.blr

/// sblri-blr (the blr program on the sblri data).
let blrSblri = posterior "sblri-blr" Models.blr

let private dense name m = { posterior name m with Settings = { PosteriorSettings.Default with DenseMetric = true } }

/// The regressions with flat priors (a dense metric: their coefficients are strongly correlated).
let mesquite = dense "mesquite-mesquite" Models.mesquite
let logmesquite = dense "mesquite-logmesquite" Models.logmesquite
let logmesquiteLogvolume = dense "mesquite-logmesquite_logvolume" Models.logmesquiteLogvolume
let logmesquiteLogva = dense "mesquite-logmesquite_logva" Models.logmesquiteLogva
let logmesquiteLogvas = dense "mesquite-logmesquite_logvas" Models.logmesquiteLogvas
let logmesquiteLogvash = dense "mesquite-logmesquite_logvash" Models.logmesquiteLogvash
let kidscoreMomhs = dense "kidiq-kidscore_momhs" Models.kidscoreMomhs
let kidscoreMomhsiq = dense "kidiq-kidscore_momhsiq" Models.kidscoreMomhsiq
let kidscoreInteraction = dense "kidiq-kidscore_interaction" Models.kidscoreInteraction
let earnHeight = dense "earnings-earn_height" Models.earnHeight
let log10earnHeight = dense "earnings-log10earn_height" Models.log10earnHeight
let logearnHeightMale = dense "earnings-logearn_height_male" Models.logearnHeightMale
let logearnLogheightMale = dense "earnings-logearn_logheight_male" Models.logearnLogheightMale
let logearnInteraction = dense "earnings-logearn_interaction" Models.logearnInteraction
let logearnInteractionZ = dense "earnings-logearn_interaction_z" Models.logearnInteractionZ
let kidscoreInteractionC = dense "kidiq_with_mom_work-kidscore_interaction_c" Models.kidscoreInteractionC
let kidscoreInteractionC2 = dense "kidiq_with_mom_work-kidscore_interaction_c2" Models.kidscoreInteractionC2
let kidscoreInteractionZ = dense "kidiq_with_mom_work-kidscore_interaction_z" Models.kidscoreInteractionZ
let kidscoreMomWork = dense "kidiq_with_mom_work-kidscore_mom_work" Models.kidscoreMomWork
let nes1972 = dense "nes1972-nes" Models.nes
let kilpisjarvi = dense "kilpisjarvi_mod-kilpisjarvi" Models.kilpisjarvi

/// Time series: ARMA(1, 1) and GARCH(1, 1) (β₁ bounded by 1 − α₁).
let arma11 = posterior "arma-arma11" Models.arma11
let garch11 = posterior "garch-garch11" Models.garch11

/// Gaussian processes: marginal (gp_regr) and latent with a Poisson log link (gp_pois_regr).
let gpRegr = posterior "gp_pois_regr-gp_regr" Models.gpRegr
let gpPoisRegr = posterior "gp_pois_regr-gp_pois_regr" Models.gpPoisRegr

/// A two-component normal mixture with ordered locations.
let lowDimGaussMix = posterior "low_dim_gauss_mix-low_dim_gauss_mix" Models.lowDimGaussMix

/// Every posterior of the catalogue.
let all : Posterior list =
    [ eightSchoolsNoncentered; arK; logearnHeight; kidscoreMomiq; blr; blrSblri
      mesquite; logmesquite; logmesquiteLogvolume; logmesquiteLogva; logmesquiteLogvas; logmesquiteLogvash
      kidscoreMomhs; kidscoreMomhsiq; kidscoreInteraction
      earnHeight; log10earnHeight; logearnHeightMale; logearnLogheightMale; logearnInteraction; logearnInteractionZ
      kidscoreInteractionC; kidscoreInteractionC2; kidscoreInteractionZ; kidscoreMomWork; nes1972; kilpisjarvi
      arma11; garch11; gpRegr; gpPoisRegr; lowDimGaussMix ]

/// The posterior of this name; raises, listing the names, when there is none.
let find (name: string) : Posterior =
    match all |> List.tryFind (fun p -> p.Name = name) with
    | Some p -> p
    | None -> invalidArg "name" (sprintf "No posterior named '%s' in the catalogue; it holds: %s." name (System.String.Join(", ", all |> List.map (fun p -> p.Name))))
