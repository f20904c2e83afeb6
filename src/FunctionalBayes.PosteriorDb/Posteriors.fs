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

/// Every posterior of the catalogue.
let all : Posterior list = [ eightSchoolsNoncentered; arK; logearnHeight; kidscoreMomiq; blr ]

/// The posterior of this name; raises, listing the names, when there is none.
let find (name: string) : Posterior =
    match all |> List.tryFind (fun p -> p.Name = name) with
    | Some p -> p
    | None -> invalidArg "name" (sprintf "No posterior named '%s' in the catalogue; it holds: %s." name (System.String.Join(", ", all |> List.map (fun p -> p.Name))))
